"""Ray against the local engine on one machine: wall time and peak memory of the whole process tree
of `audit scan` with each engine, at several dataset sizes, and the size from which Ray would pay.

    python benchmarks/ray_scaling.py [--sizes 20000 100000] [--repeat 3] [--workers 2]

The data are N distinct 32x32 PNGs in webdataset shards of 1,000 (benchmarks/scan_memory.py's).
Each run is a fresh process tree, default detectors: `audit scan --workers W` for the local engine,
and for Ray `ray_scan(..., num_workers=W, local_below=0)` in a fresh interpreter (Ray started by the
scan, no address; local_below=0 keeps Ray even for sizes it would hand to the local engine),
interleaved (local, Ray, local, Ray, ...) so that both meet the same load. Printed per size: medians
of R runs with the min-max range, the peak RSS of the tree (sampled from /proc every 0.2 s), and Ray's
time over the local engine's per interleaved pair. From the two smallest and largest sizes each
engine's time is fitted as fixed seconds + seconds per image; where Ray's per-image cost is lower,
the break-even size is where the two lines cross. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from scan_memory import run_sampled, write_shards  # noqa: E402

ENGINES = ("local", "ray")
RAY_SCAN = (
    "import sys; from audit.engine.ray_engine import ray_scan; "
    "ray_scan(sys.argv[1], sys.argv[2], num_workers=int(sys.argv[3]), local_below=0)"
)


def command(engine: str, pattern: str, out: Path, workers: int) -> list[str]:
    if engine == "ray":
        return [sys.executable, "-c", RAY_SCAN, pattern, str(out), str(workers)]
    return [
        str(Path(sys.executable).with_name("audit")),
        "scan",
        pattern,
        "--out",
        str(out),
        "--quiet",
        "--workers",
        str(workers),
    ]


def measure(run: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS of the process tree in MB) of one command."""
    seconds, peak, code, err = run_sampled(run)
    if code not in (0, 1):
        raise RuntimeError(f"scan failed ({code}): {err[-2000:]}")
    return seconds, peak


def interleaved(pattern: str, tmp: str, workers: int, repeat: int) -> dict[str, list[tuple[float, float]]]:
    """(seconds, peak MB) of each run per engine, the engines taking turns."""
    runs: dict[str, list[tuple[float, float]]] = {engine: [] for engine in ENGINES}
    for _ in range(repeat):
        for engine in ENGINES:
            with tempfile.TemporaryDirectory(dir=tmp) as out:
                runs[engine].append(measure(command(engine, pattern, Path(out) / "scan", workers)))
    return runs


def fit(sizes: list[int], seconds: list[float]) -> tuple[float, float]:
    """(fixed seconds, seconds per image) of the line through the smallest and the largest size."""
    per_image = (seconds[-1] - seconds[0]) / (sizes[-1] - sizes[0])
    return seconds[0] - per_image * sizes[0], per_image


def break_even(local: tuple[float, float], ray: tuple[float, float]) -> str:
    """The size from which Ray's fitted line runs below the local engine's, in words."""
    (fixed_local, each_local), (fixed_ray, each_ray) = local, ray
    if each_ray >= each_local:
        return (
            f"none with these workers: Ray costs {1e3 * each_ray:.3f} ms per image against "
            f"{1e3 * each_local:.3f} locally, plus {fixed_ray - fixed_local:.1f} s more to start"
        )
    return f"about {(fixed_ray - fixed_local) / (each_local - each_ray):,.0f} images"


def _median_range(values: list[float], form: str) -> str:
    return f"{form.format(statistics.median(values))} ({form.format(min(values))}-{form.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and size; medians are reported")
    parser.add_argument("--workers", type=int, default=2, help="--workers locally, --num-workers for Ray")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    table = Table(
        title=f"Ray vs local engine, {args.workers} workers, 32x32 PNGs in tar shards of 1,000, "
        f"median of {args.repeat} interleaved runs (min-max)"
    )
    for column in ("images", "engine", "seconds", "images/s", "peak RSS of the tree (MB)", "Ray time / local"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    medians: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            runs = interleaved(write_shards(Path(tmp) / f"data-{n}", n), tmp, args.workers, args.repeat)
            ratios = [r[0] / local[0] for r, local in zip(runs["ray"], runs["local"])]
            for engine in ENGINES:
                seconds, peaks = [s for s, _ in runs[engine]], [p for _, p in runs[engine]]
                medians[engine].append(statistics.median(seconds))
                table.add_row(
                    f"{n:,}",
                    engine,
                    _median_range(seconds, "{:.2f}"),
                    f"{n / statistics.median(seconds):,.0f}",
                    _median_range(peaks, "{:,.0f}"),
                    _median_range(ratios, "{:.2f}x") if engine == "ray" else "",
                )
    console = Console()
    console.print(table)
    if len(sizes) > 1:
        console.print("break-even:", break_even(fit(sizes, medians["local"]), fit(sizes, medians["ray"])))
    console.print(
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
