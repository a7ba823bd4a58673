"""Scan throughput: images per second of the scan's per-image work in each mode, against decoding
alone, measured in the same warm worker processes on the same folder; and a whole scan against
decoding alone, end to end.

    python benchmarks/scan_throughput.py [SOURCE] [--workers N] [--repeat R] [--copies K]
    python benchmarks/scan_throughput.py --images 1000 --size 512 --repeat 3 [--no-modes]

Every mode runs the engine's worker function (`process_batch`: read, decode once, the mode's
pixel detectors, the result rows) over all images in a pool of N processes that is started and
warmed before the clock starts, and writes no output files: so the columns compare per-image
work only. Worker start-up and output writing are fixed costs per scan, measured apart by
benchmarks/startup.py. "plain PIL loop" is the alternative a user would write (open, convert to
RGB) in the same pool. Medians of R runs with the min-max range. SOURCE defaults to the built-in
demo folder, copied K times (default 4) into a temporary directory; with --images N, N PNGs of
SIZE x SIZE pixels cut from the demo photographs (each crop at another place, so no two match).

The second table is what a user waits for, as medians of R interleaved pairs, each command a fresh
process: "decode only" is benchmarks/decode_only.py (a plain script: a pool of N spawned processes
opening each file with PIL and converting it to RGB), "audit scan" is the `audit scan SOURCE --out
OUT --workers N` command with the default detectors, start-up, journal, results.parquet and the
reports included; the ratio is decode-only seconds over scan seconds, per pair.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from audit import ScanConfig, iter_records
from audit.demo import REAL_PHOTOS, build_demo_copies, sample_photo
from audit.engine.batch import init_worker, process_batch
from audit.engine.local import default_workers

MODES = (
    ("decode only", ()),
    ("metadata", ("metadata",)),
    ("watermark", ("watermark",)),
    ("metadata + watermark (scan)", ("metadata", "watermark")),
)
BATCH = 16


def pil_decode(paths: list[str]) -> int:
    decoded = 0
    for path in paths:
        try:
            decoded += np.asarray(Image.open(path).convert("RGB")).shape[0] > 0
        except Exception:  # noqa: BLE001 - the demo folder holds broken files on purpose
            pass
    return decoded


def _no_setup() -> None:
    pass


def timed_runs(work, items: list, workers: int, repeat: int, initializer=_no_setup, initargs=()) -> list[float]:
    """Seconds per run of `work` over `items` in a pool started and warmed beforehand."""
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=initializer, initargs=initargs
    ) as pool:
        list(pool.map(work, items[:workers]))  # warm-up: workers started, imports and detectors loaded
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            list(pool.map(work, items))
            seconds.append(time.perf_counter() - start)
    return seconds


def build_photo_crops(root: str, images: int, size: int) -> Path:
    """`images` PNGs of size x size pixels, crops at different places of the demo photographs
    (enlarged to 1.5 x size), with one pixel numbered: no two files share content."""
    out = Path(root) / f"crops{size}"
    out.mkdir(parents=True)
    side = size * 3 // 2
    photos = [
        np.asarray(Image.fromarray(sample_photo(name)).resize((side, side), Image.BILINEAR)) for name in REAL_PHOTOS
    ]
    rng = np.random.default_rng(0)
    for i in range(images):
        top, left = rng.integers(0, side - size + 1, 2)
        pixels = np.array(photos[i % len(photos)][top : top + size, left : left + size])
        pixels[0, 0] = i % 256, i // 256 % 256, 7
        Image.fromarray(pixels).save(out / f"img{i:06d}.png")
    return out


def command_seconds(command: list[str]) -> float:
    """Wall seconds of a command run to its end, as a user runs it (its own interpreter and imports)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def decode_only_command(source: str, workers: int) -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("decode_only.py")), source, "--workers", str(workers)]


def scan_command(source: str, workers: int, out: str) -> list[str]:
    """`audit scan` from the console script installed beside this interpreter."""
    return [
        str(Path(sys.executable).with_name("audit")),
        "scan",
        source,
        "--out",
        out,
        "--overwrite",
        "--workers",
        str(workers),
        "--quiet",
    ]


def end_to_end_table(source: str, n: int, workers: int, repeat: int, tmp: str) -> Table:
    """Interleaved pairs of a decode-only script and `audit scan`, each a fresh process; medians and ranges."""
    decode, whole, ratios = [], [], []
    out = str(Path(tmp) / "scan-out")
    for _ in range(repeat):
        decode.append(command_seconds(decode_only_command(source, workers)))
        whole.append(command_seconds(scan_command(source, workers, out)))
        ratios.append(decode[-1] / whole[-1])
    table = Table(title=f"end to end on {n} images, {workers} workers, median of {repeat} interleaved pairs (min-max)")
    for column in ("run", "seconds", "images/s", "throughput ratio to decode-only"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for label, seconds in (
        ("decode only (benchmarks/decode_only.py)", decode),
        ("audit scan (default detectors)", whole),
    ):
        table.add_row(
            label,
            _median_range(seconds, "{:.2f}"),
            _median_range([n / s for s in seconds], "{:.1f}"),
            _median_range(ratios, "{:.2f}") if seconds is whole else "1.00",
        )
    return table


def _median_range(values: list[float], form: str) -> str:
    return f"{form.format(statistics.median(values))} ({form.format(min(values))}-{form.format(max(values))})"


def per_mode_table(batches: list, n: int, workers: int, repeat: int) -> Table:
    """The engine's per-image work in each mode, in warm pools, against decoding alone."""
    table = Table(
        title=f"per-image work on {n} images, {workers} warm workers, median of {repeat} "
        f"(min-max) ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"
    )
    for column in ("mode", "images/s", "ms per image per worker", "ratio to decode-only"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    paths = [[r.path for _, r in b] for b in batches]
    runs = {"plain PIL loop (open, RGB)": timed_runs(pil_decode, paths, workers, repeat)}
    for label, detectors in MODES:
        config = ScanConfig(detectors=detectors).resolved()
        runs[label] = timed_runs(process_batch, batches, workers, repeat, init_worker, (config, None))
    baseline = n / statistics.median(runs["decode only"])
    for label, seconds in runs.items():
        rates = [n / s for s in seconds]
        rate = statistics.median(rates)
        table.add_row(
            label,
            f"{rate:.1f} ({min(rates):.1f}-{max(rates):.1f})",
            f"{1000 * workers / rate:.1f}",
            f"{rate / baseline:.2f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="folder or other scan source (default: the demo folder)")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per mode; medians are reported")
    parser.add_argument("--copies", type=int, default=4, help="copies of the demo folder (default source only)")
    parser.add_argument("--images", type=int, help="instead of the demo folder: this many photo crops")
    parser.add_argument("--size", type=int, default=512, help="side of the photo crops in pixels (with --images)")
    parser.add_argument("--no-modes", action="store_true", help="only the end-to-end table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.source:
            source = args.source
        elif args.images:
            source = str(build_photo_crops(tmp, args.images, args.size))
        else:
            source = str(build_demo_copies(tmp, args.copies))
        records = list(enumerate(iter_records(source)))
        batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
        n = len(records)
        console = Console()
        if not args.no_modes:
            console.print(per_mode_table(batches, n, args.workers, args.repeat))
        console.print(end_to_end_table(source, n, args.workers, args.repeat, tmp))
        console.print(
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python {platform.python_version()}"
        )


if __name__ == "__main__":
    main()
