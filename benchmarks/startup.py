"""The fixed cost of a command: CPU seconds (user + system, worker processes included) of
`audit --help`, a scan of one image (with the default worker processes and in-process), and
`audit simulate` with its defaults, each run as a fresh process; medians of --repeat runs with
the min-max range. Last, the wall seconds a spawned scan worker spends importing what it needs
before its first batch, and the modules it holds then (the heavy ones named). Targets: `audit --help` under 1 s, a one-image scan under 2 CPU-s.

    python benchmarks/startup.py [--repeat 5] [--skip-simulate]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

AUDIT = str(Path(sys.executable).with_name("audit"))


def run_cpu(command: list[str], cwd: str) -> tuple[float, float]:
    """(CPU seconds of the command and its children, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def commands(folder: str, out: str) -> dict[str, list[str]]:
    scan = [AUDIT, "scan", folder, "--out", out, "--overwrite", "--quiet"]
    return {
        "audit --help": [AUDIT, "--help"],
        "scan, 1 image (default workers)": scan,
        "scan, 1 image (--workers 0)": scan + ["--workers", "0"],
        "audit simulate (defaults)": [AUDIT, "simulate", "--out", out + "-sim"],
    }


WORKER = (
    "import pickle, sys, time; started = time.perf_counter(); "
    "init, config = pickle.loads(sys.stdin.buffer.read()); init(config, None); "
    "print(time.perf_counter() - started, len(sys.modules), "
    "*(name for name in ('pyarrow', 'torch', 'onnxruntime', 'faiss', 'click', 'rich', 'pandas') if name in sys.modules))"
)


def worker_startup(repeat: int) -> tuple[list[float], str]:
    """Seconds a fresh interpreter takes to do what a spawned scan worker does before its first batch:
    unpickle the initializer and the ScanConfig (importing what they need) and run the initializer;
    and the modules it then holds, with the heavy ones among them."""
    from audit import ScanConfig
    from audit.engine.batch import init_worker

    payload = pickle.dumps((init_worker, ScanConfig().resolved()))
    seconds, modules = [], ""
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", WORKER], input=payload, capture_output=True, check=True)
        first, *rest = out.stdout.decode().split()
        seconds.append(float(first))
        modules = f"{rest[0]} modules" + (f" incl. {', '.join(rest[1:])}" if rest[1:] else "")
    return seconds, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-simulate", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="audit-startup-")
    try:
        folder = os.path.join(tmp, "one")
        os.makedirs(folder)
        pixels = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, "image.png"))
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; medians of {args.repeat} fresh processes")
        print(f"{'command':<34} {'CPU s (min-max)':>20} {'wall s (min-max)':>20}")
        for name, command in commands(folder, os.path.join(tmp, "out")).items():
            if args.skip_simulate and "simulate" in name:
                continue
            cpu, wall = zip(*(run_cpu(command, tmp) for _ in range(args.repeat)))
            print(f"{name:<34} {_spread(cpu):>20} {_spread(wall):>20}", flush=True)
        seconds, modules = worker_startup(args.repeat)
        print(f"{'a scan worker starting (imports)':<34} {'':>20} {_spread(seconds):>20}  {modules}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _spread(values) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
