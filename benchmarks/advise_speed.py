"""How long the default `audit advise` takes, and how stable its recommendation is over seeds.

    python benchmarks/advise_speed.py [--seeds 5]

The default search (Gaussian backend, the default scenario of `audit simulate`, FID within 10 % of
the all-real control over 30 generations, 100 seeds per policy) is run from a scan-like estimate
(point 0.5, interval 0.35-0.65: three contaminations), then at contamination 0.5 with five
different base seeds; the table shows each seed's recommendation, its loss and cost.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from loops import advise
from loops.config import scenario


def timed_scan_advice() -> tuple[float, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.json"
        path.write_text(
            json.dumps({"estimate": {"point": 0.5, "interval": [0.35, 0.65], "lower_bound": 0.2}, "config": {}})
        )
        started = time.perf_counter()
        advice = advise(from_scan=path)
        return time.perf_counter() - started, advice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    seconds, advice = timed_scan_advice()
    print(f"default advise from a scan (3 contaminations): {seconds:.1f} s")
    print(f"  {advice.conclusion()}")
    print(f"\nstability at contamination 0.5 over {args.seeds} base seeds (100 runs each):")
    print(f"{'seed':>6}  {'recommended policy':<40} {'FID loss':>9} {'confidence':>11} {'cost':>6} {'time':>6}")
    chosen = []
    for k in range(args.seeds):
        started = time.perf_counter()
        at = advise(0.5, config=replace(scenario(), seed=1000 * k)).point.recommended
        chosen.append(at.policy)
        print(
            f"{1000 * k:>6}  {at.policy.name:<40} {at.quality.loss:>+9.1%} {at.quality.confidence:>11.0%} "
            f"{at.cost['cost']:>6.1f} {time.perf_counter() - started:>5.1f}s"
        )
    families = {p.filter for p in chosen}
    shares = [p.fresh for p in chosen]
    print(
        f"\nsame policy in {max(chosen.count(p) for p in chosen)}/{len(chosen)} seeds; filters chosen: "
        f"{', '.join(sorted(families))}; fresh share {min(shares):.0%}-{max(shares):.0%}"
    )


if __name__ == "__main__":
    main()
