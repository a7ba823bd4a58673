"""How long `audit advise` and the default `audit simulate` take, as a user runs them: each command in
a fresh process (start-up included), the commands interleaved round by round so that a change in the
machine's load hits every command alike; the table gives the median, the range and the load.

    python benchmarks/advise_speed.py [--rounds 3] [--tree DIR ...]

Commands (default settings throughout, outputs in a temporary folder):
- `audit advise --contamination 0.4`
- `audit advise --from-scan summary.json`: the scan of issue 26, metadata and watermark ran (12 and
  5 images flagged of 100), point 0.3, interval 0.2-0.45: three contaminations, the search at 0.45
- `audit simulate`

--tree DIR (repeatable): run the commands with the code of another checkout of the repository too
(PYTHONPATH=DIR, e.g. `git worktree add /tmp/before HEAD~1`), interleaved with this one, so a
before/after comparison shares the same load. The load average (1 min) is read before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCAN = {
    "estimate": {"point": 0.3, "interval": [0.2, 0.45], "lower_bound": 0.0},
    "detectors": ["metadata", "watermark"],
    "per_detector": {"metadata": {"synthetic": 12}, "watermark": {"synthetic": 5}},
    "counts": {"ok": 100},
    "config": {"detectors": ["metadata", "watermark"]},
}
COMMANDS = {
    "advise --contamination 0.4": ["advise", "--contamination", "0.4", "--out", "{tmp}/advise", "--quiet"],
    "advise --from-scan (3 contaminations)": ["advise", "--from-scan", "{tmp}/scan.json", "--out", "{tmp}/scan"],
    "simulate (default)": ["simulate", "--out", "{tmp}/simulate"],
}
AUDIT = "import sys; from audit.cli import main; sys.argv[0] = 'audit'; sys.exit(main())"


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    return f"{os.cpu_count()} vCPUs ({model}, {platform.machine()})"


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def run(tree: Path, args: list[str], tmp: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", AUDIT, *[a.format(tmp=tmp) for a in args]],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"audit {' '.join(args)} failed in {tree}:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to time too")
    parser.add_argument("--only", choices=list(COMMANDS), action="append", help="time only these commands")
    args = parser.parse_args()
    trees = [ROOT, *[t.resolve() for t in args.tree]]
    commands = {k: v for k, v in COMMANDS.items() if not args.only or k in args.only}
    times: dict[tuple[str, Path], list[float]] = {(c, t): [] for c in commands for t in trees}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="advise-speed-") as folder:
        tmp = Path(folder)
        (tmp / "scan.json").write_text(json.dumps(SCAN))
        for r in range(args.rounds):
            for name, command in commands.items():
                for tree in trees if r % 2 == 0 else trees[::-1]:  # alternate which tree goes first
                    loads.append(os.getloadavg()[0])
                    times[name, tree].append(run(tree, command, tmp))
                    print(f"round {r + 1}: {name} [{tree}] {times[name, tree][-1]:.1f} s", file=sys.stderr)
    print(f"machine: {machine()}; {args.rounds} interleaved rounds, each command in a fresh process")
    print(f"load average (1 min) before the runs: median {statistics.median(loads):.1f}, max {max(loads):.1f}")
    width = max(len(c) for c in commands)
    tree_width = max(len(str(t)) for t in trees)
    print(f"{'command':<{width}}  {'code':<{tree_width}}  {'median':>7}  {'min':>6}  {'max':>6}")
    for (name, tree), seconds in times.items():
        print(
            f"{name:<{width}}  {str(tree):<{tree_width}}  {statistics.median(seconds):>6.1f}s  "
            f"{min(seconds):>5.1f}s  {max(seconds):>5.1f}s"
        )


if __name__ == "__main__":
    main()
