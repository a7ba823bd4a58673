"""Ray engine scaling: images per second with 1 and 2 Ray workers on the same webdataset shards,
and the local engine on them, measured side by side in one run, each from a cold start.

    python benchmarks/ray_scaling.py [--copies K] [--shards S] [--repeat R] [--workers 1,2]

The shards hold K distinct copies of the demo folder (23 files each: photographs, marked copies,
two broken files), split evenly over S tar files. Each run scans them from scratch (metadata +
watermark, as `audit scan` does by default) into a fresh folder, as a user's command would: a Ray
run starts Ray itself (Ray is shut down before it), its actors, and writes the outputs; a local
run starts its worker processes and writes the outputs. Medians of R runs with the min-max range.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
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


def timed_runs(run, repeat: int, before=lambda: None) -> tuple[int, list[float]]:
    """(images scanned, wall-clock seconds of each of `repeat` runs); `before` runs untimed before each."""
    seconds, images = [], 0
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        images = len(run().rows)
        seconds.append(time.perf_counter() - start)
    return images, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8, help="copies of the demo folder (23 files each)")
    parser.add_argument("--shards", type=int, default=8, help="tar shards to split them into")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; medians are reported")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to measure")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        shards = str(write_shards(build_demo_copies(tmp, args.copies), Path(tmp) / "shards", args.shards))
        runs = [("local, 2 processes", lambda: scan(shards, Path(tempfile.mkdtemp(dir=tmp)), workers=2), lambda: None)]
        runs += [(f"ray, {n} worker{'s' * (n > 1)}",
                  lambda n=n: ray_scan(shards, Path(tempfile.mkdtemp(dir=tmp)), num_workers=n), ray.shutdown)
                 for n in map(int, args.workers.split(","))]
        timings = {label: timed_runs(run, args.repeat, before) for label, run, before in runs}
        ray.shutdown()
    local = statistics.median(timings["local, 2 processes"][1])
    table = Table(title=f"{args.shards} tar shards, metadata + watermark, cold starts (Ray's start-up counted), median "
                        f"of {args.repeat} (min-max) ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
    for column in ("engine", "images", "seconds", "images/s", "time vs local"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for label, (n, seconds) in timings.items():
        median = statistics.median(seconds)
        table.add_row(label, str(n), f"{median:.2f} ({min(seconds):.2f}-{max(seconds):.2f})", f"{n / median:.1f}",
                      f"{median / local:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
