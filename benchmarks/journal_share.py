"""The resume journal's share of the scanning process: a scan of N small PNGs (seeded 32x32 noise in
webdataset shards of 1,000, default detectors, 2 worker processes, batches of 16), run in this
process with the journal's calls timed, once fsyncing after every batch ("per batch", what the
journal did before) and once in groups (the default, at most every SYNC_SECONDS). Printed per mode,
as medians of interleaved runs: the journal's CPU seconds (time.thread_time of the thread calling
it) and their share of the main process's CPU (time.process_time: all its threads, not the
workers'), its wall seconds and their share of the scan's
wall time (fsync waits cost wall time, not CPU), and the scan's images/s.

    .venv/bin/python benchmarks/journal_share.py [--images 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scan_memory import write_shards  # noqa: E402

from audit.engine import journal  # noqa: E402
from audit.engine.local import scan  # noqa: E402

MODES = {"per batch": 0.0, "grouped": journal.SYNC_SECONDS}
TIMED = ("__init__", "append", "restart", "close")


class JournalClock:
    """Adds the CPU and wall seconds spent inside the Journal's methods while installed."""

    def __init__(self):
        self.cpu = self.wall = 0.0
        self._originals = {name: getattr(journal.Journal, name) for name in TIMED}

    def __enter__(self):
        for name, original in self._originals.items():
            setattr(journal.Journal, name, self._timed(original))
        return self

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(journal.Journal, name, original)

    def _timed(self, original):
        def timed(*args, **kwargs):
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.cpu += time.thread_time() - cpu
                self.wall += time.perf_counter() - wall

        return timed


def one_scan(pattern: str, out: Path, sync_seconds: float, images: int) -> dict:
    """The journal's CPU and wall seconds, the main process's CPU and the scan's wall seconds."""
    journal.SYNC_SECONDS = sync_seconds
    try:
        with JournalClock() as clock:
            cpu, wall = time.process_time(), time.perf_counter()
            scan(pattern, out, workers=2, overwrite=True)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        journal.SYNC_SECONDS = MODES["grouped"]
    return {"journal_cpu": clock.cpu, "main_cpu": cpu, "journal_wall": clock.wall, "wall": wall, "rate": images / wall}


def measure(images: int, repeats: int) -> dict[str, list[dict]]:
    """Interleaved runs of each mode over the same shards."""
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="journal-share-") as tmp:
        pattern = write_shards(Path(tmp) / "shards", images)
        for _ in range(repeats):
            for mode, seconds in MODES.items():
                runs[mode].append(one_scan(pattern, Path(tmp) / "out", seconds, images))
    return runs


def rows(runs: dict[str, list[dict]]) -> list[str]:
    """One printed line per mode: medians over the runs."""
    lines = [f"{'journal':>10} {'CPU s':>7} {'of main CPU':>12} {'wall s':>7} {'of scan wall':>13} {'images/s':>9}"]
    for mode, results in runs.items():

        def median(key, results=results):
            return statistics.median(r[key] for r in results)

        cpu_share = statistics.median(r["journal_cpu"] / r["main_cpu"] for r in results)
        wall_share = statistics.median(r["journal_wall"] / r["wall"] for r in results)
        lines.append(
            f"{mode:>10} {median('journal_cpu'):>7.2f} {cpu_share:>11.1%} {median('journal_wall'):>7.2f}"
            f" {wall_share:>12.1%} {median('rate'):>9.0f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"journal of a {args.images}-image scan (32x32 PNGs, 2 workers), median of {args.repeats} interleaved runs")
    for line in rows(measure(args.images, args.repeats)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
