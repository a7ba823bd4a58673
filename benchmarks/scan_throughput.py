"""Scan throughput: images per second of decode-only against the scan's detectors, measured
side by side in one run on the same folder and the same number of workers.

    python benchmarks/scan_throughput.py [SOURCE] [--workers N] [--repeat R] [--copies K]

SOURCE defaults to the built-in demo folder, copied K times (default 4) into a temporary
directory so that worker start-up does not dominate.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from rich.console import Console
from rich.table import Table

from audit import ScanConfig, scan
from audit.demo import build_demo_copies
from audit.engine.local import default_workers

MODES = (("decode only", ()), ("metadata", ("metadata",)), ("watermark", ("watermark",)),
         ("metadata + watermark (scan)", ("metadata", "watermark")))


def measure(source: str, detectors: tuple[str, ...], workers: int, repeat: int) -> tuple[int, float]:
    """(images scanned, best wall-clock seconds over `repeat` runs)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = scan(source, config=ScanConfig(detectors=detectors), workers=workers)
        best = min(best, time.perf_counter() - start)
    return result.summary["counts"]["total"], best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="folder or other scan source (default: the demo folder)")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode; the best is kept")
    parser.add_argument("--copies", type=int, default=4, help="copies of the demo folder (default source only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or str(build_demo_copies(tmp, args.copies))
        table = Table(title=f"scan throughput on {source} ({args.workers} workers, "
                            f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
        for column in ("mode", "images", "seconds", "images/s", "ratio to decode-only"):
            table.add_column(column, justify="left" if column == "mode" else "right")
        baseline = None
        for label, detectors in MODES:
            n, seconds = measure(source, detectors, args.workers, args.repeat)
            rate = n / seconds
            baseline = baseline or rate
            table.add_row(label, str(n), f"{seconds:.2f}", f"{rate:.1f}", f"{rate / baseline:.3f}")
        Console().print(table)


if __name__ == "__main__":
    main()
