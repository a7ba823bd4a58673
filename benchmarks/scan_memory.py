"""Peak memory of a scan against the size of the dataset. Generates N distinct small images (a
seeded 32x32 noise picture per item) in webdataset shards of 1,000, scans them with `audit scan`
in a fresh process tree (default detectors, 2 workers), and prints images/s and the peak RSS of
the whole tree (the command and its workers, sampled from /proc) at each N, with the growth per
1,000 rows between consecutive N. Memory should stop growing once N passes the rows one results part
holds (10,000): the growth from 10^4 to 10^5 is the figure to watch. Linux only (/proc).

    .venv/bin/python benchmarks/scan_memory.py                 # N = 10^3, 10^4, 10^5
    .venv/bin/python benchmarks/scan_memory.py --sizes 1000 10000 --engine ray
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

SHARD = 1000
PAGE = os.sysconf("SC_PAGE_SIZE")


def write_shards(root: Path, n: int) -> str:
    """N distinct PNGs in tar shards under root; returns the brace pattern naming them."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    shards = (n + SHARD - 1) // SHARD
    for s in range(shards):
        with tarfile.open(root / f"{s:05d}.tar", "w") as tar:
            for i in range(s * SHARD, min(n, (s + 1) * SHARD)):
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
                info = tarfile.TarInfo(f"{i:08d}.png")
                info.size = buffer.tell()
                buffer.seek(0)
                tar.addfile(info, buffer)
    return str(root / f"{{{0:05d}..{shards - 1:05d}}}.tar")


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
        todo += children.get(p, [])
    return total


def run_sampled(command: list[str], preexec_fn=None, every: float = 0.2) -> tuple[float, float, int, str]:
    """Run `command`, sampling its process tree's RSS every `every` s: (seconds, peak MB, exit
    status, stderr)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=preexec_fn)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss(process.pid))
            time.sleep(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    sampler.join()
    return time.perf_counter() - started, peak[0] / 2**20, process.returncode, err.decode()


def measure(pattern: str, out: Path, engine: str, workers: int) -> tuple[float, float]:
    """(seconds, peak tree RSS in MB) of one `audit scan`."""
    command = [sys.executable, "-m", "audit.cli", "scan", pattern, "--out", str(out), "--quiet", "--format", "json"]
    command += ["--engine", "ray", "--num-workers", str(workers)] if engine == "ray" else ["--workers", str(workers)]
    seconds, peak, code, err = run_sampled(command)
    if code not in (0, 1):
        raise RuntimeError(f"scan failed ({code}): {err[-2000:]}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--large", action="store_true", help="add N = 10^6")
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = args.sizes + ([1_000_000] if args.large else [])
    table = Table(title=f"scan memory, {args.engine} engine, {args.workers} workers, 32x32 PNGs in tar shards")
    for column in ("images", "seconds", "images/s", "peak RSS of the tree (MB)"):
        table.add_column(column, justify="right")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            pattern = write_shards(Path(tmp) / f"data-{n}", n)
            seconds, peak = measure(pattern, Path(tmp) / f"out-{n}", args.engine, args.workers)
            results.append((n, peak))
            table.add_row(f"{n:,}", f"{seconds:.1f}", f"{n / seconds:.0f}", f"{peak:.0f}")
    console = Console()
    console.print(table)
    for (n0, m0), (n1, m1) in zip(results, results[1:]):
        console.print(
            f"growth: {m1 - m0:+.0f} MB from {n0:,} to {n1:,} images "
            f"({1000 * (m1 - m0) / (n1 - n0):+.3f} MB per 1,000 rows)"
        )


if __name__ == "__main__":
    main()
