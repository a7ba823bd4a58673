"""Ray engine scaling: images per second with 1 and 2 Ray workers on the same webdataset shards,
and the local engine on them, measured side by side in one run.

    python benchmarks/ray_scaling.py [--copies K] [--shards S] [--repeat R] [--workers 1,2]

The shards hold K distinct copies of the demo folder (23 files each: photographs, marked copies,
two broken files), split evenly over S tar files. Each run scans them from scratch (metadata +
watermark, as `audit scan` does by default) into a fresh folder; times include starting the
actors and writing the outputs, not starting Ray (printed apart).
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import tarfile
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from audit import scan
from audit.demo import build_demo_copies
from audit.engine.ray_engine import ray_scan


def write_shards(folder: Path, out: Path, count: int) -> Path:
    """The files under `folder`, in sorted order, split evenly over `count` tar shards."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    out.mkdir(parents=True)
    for i in range(count):
        with tarfile.open(out / f"shard-{i:04d}.tar", "w") as tar:
            for path in files[i::count]:
                tar.add(path, arcname=str(path.relative_to(folder)))
    return out


def best_seconds(run, repeat: int) -> tuple[int, float]:
    """(images scanned, best wall-clock seconds over `repeat` runs)."""
    best, images = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        images = len(run().rows)
        best = min(best, time.perf_counter() - start)
    return images, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=24, help="copies of the demo folder (23 files each)")
    parser.add_argument("--shards", type=int, default=12, help="tar shards to split them into")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; the best is kept")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to measure")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        shards = str(write_shards(build_demo_copies(tmp, args.copies), Path(tmp) / "shards", args.shards))
        start = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        started = time.perf_counter() - start
        runs = [("local, 2 processes", lambda: scan(shards, Path(tempfile.mkdtemp(dir=tmp)), workers=2))]
        runs += [(f"ray, {n} worker{'s' * (n > 1)}",
                  lambda n=n: ray_scan(shards, Path(tempfile.mkdtemp(dir=tmp)), num_workers=n))
                 for n in map(int, args.workers.split(","))]
        rates = {label: best_seconds(run, args.repeat) for label, run in runs}
    one = next(n / s for label, (n, s) in rates.items() if label.startswith("ray, 1 "))
    table = Table(title=f"{args.shards} tar shards, metadata + watermark, best of {args.repeat} ({os.cpu_count()} CPUs, "
                        f"{platform.processor() or platform.machine()}; Ray started in {started:.1f} s)")
    for column in ("engine", "images", "seconds", "images/s", "vs ray 1 worker"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for label, (n, seconds) in rates.items():
        table.add_row(label, str(n), f"{seconds:.2f}", f"{n / seconds:.1f}", f"{n / seconds / one:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
