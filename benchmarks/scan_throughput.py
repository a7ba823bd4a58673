"""Scan throughput: images per second of the scan's per-image work in each mode, against decoding
alone, measured in the same warm worker processes on the same folder.

    python benchmarks/scan_throughput.py [SOURCE] [--workers N] [--repeat R] [--copies K]

Every mode runs the engine's worker function (`process_batch`: read, decode once, the mode's
pixel detectors, the result rows) over all images in a pool of N processes that is started and
warmed before the clock starts, and writes no output files: so the columns compare per-image
work only. Worker start-up and output writing are fixed costs per scan, measured apart by
benchmarks/startup.py. "plain PIL loop" is the alternative a user would write (open, convert to
RGB) in the same pool. Medians of R runs with the min-max range. SOURCE defaults to the built-in
demo folder, copied K times (default 4) into a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from audit import ScanConfig, iter_records
from audit.demo import build_demo_copies
from audit.engine.batch import init_worker, process_batch
from audit.engine.local import default_workers

MODES = (("decode only", ()), ("metadata", ("metadata",)), ("watermark", ("watermark",)),
         ("metadata + watermark (scan)", ("metadata", "watermark")))
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
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=initializer,
                             initargs=initargs) as pool:
        list(pool.map(work, items[:workers]))  # warm-up: workers started, imports and detectors loaded
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            list(pool.map(work, items))
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="folder or other scan source (default: the demo folder)")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per mode; medians are reported")
    parser.add_argument("--copies", type=int, default=4, help="copies of the demo folder (default source only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or str(build_demo_copies(tmp, args.copies))
        records = list(enumerate(iter_records(source)))
        batches = [records[i:i + BATCH] for i in range(0, len(records), BATCH)]
        n = len(records)
        table = Table(title=f"per-image work on {n} images, {args.workers} warm workers, median of {args.repeat} "
                            f"(min-max) ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
        for column in ("mode", "images/s", "ms per image per worker", "ratio to decode-only"):
            table.add_column(column, justify="left" if column == "mode" else "right")
        paths = [[r.path for _, r in b] for b in batches]
        runs = {"plain PIL loop (open, RGB)": timed_runs(pil_decode, paths, args.workers, args.repeat)}
        for label, detectors in MODES:
            config = ScanConfig(detectors=detectors).resolved()
            runs[label] = timed_runs(process_batch, batches, args.workers, args.repeat, init_worker, (config, None))
        baseline = n / statistics.median(runs["decode only"])
        for label, seconds in runs.items():
            rates = [n / s for s in seconds]
            rate = statistics.median(rates)
            table.add_row(label, f"{rate:.1f} ({min(rates):.1f}-{max(rates):.1f})",
                          f"{1000 * args.workers / rate:.1f}", f"{rate / baseline:.2f}")
        Console().print(table)


if __name__ == "__main__":
    main()
