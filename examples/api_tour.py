"""A tour of the Python API: scan a folder, read the estimated synthetic fraction, and simulate
what training on data with that contamination does over generations, with and without filters.

    python examples/api_tour.py [SOURCE] [--bank BANK] [--out DIR]

Without SOURCE it builds the demo folder (real photographs, marked copies and re-shared copies
whose marks were lost, see audit/demo.py) and a bank of its marked images embedded by the real
CLIP encoder (ONNX; pulled into the model cache when missing), in a temporary folder. Without --out
the scan and simulation outputs go to a temporary folder too. Takes a few seconds.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import audit
from audit.demo import build_demo_folder, demo_bank
from loops.config import scenario
from loops.simulate import simulate

FILTERS = ("none", "watermark", "oracle")


def scan_folder(source: str, out: Path, bank: str | None = None) -> dict:
    """Scan with the metadata and watermark detectors, plus near-duplicate search in `bank` when given
    (with the bank's encoder); returns the summary (summary.json)."""
    config = audit.ScanConfig(detectors=("metadata", "watermark"), bank=bank)
    return audit.scan(source, out=out / "scan", config=config, workers=1).summary


def contamination_of(summary: dict) -> tuple[float, str]:
    """The estimate to simulate with: the point estimate, or the interval's upper end when there is none."""
    e = summary["estimate"]
    if e["point"] is not None:
        return e["point"], e["method"]
    return e["interval"][1], f"upper end of the interval (no point estimate: {'; '.join(e['warnings'])})"


def simulate_contamination(contamination: float, out: Path) -> dict:
    """The Gaussian toy in the default scenario of `audit simulate` (sampling bias lambda = 0.7):
    fresh real data each generation plus `contamination` of the previous model's samples; one
    configuration per filter, beside the all-real control."""
    configs = [
        replace(
            scenario(),
            model="gaussian",
            loop="fresh",
            contamination=round(contamination, 3),
            generations=20,
            repeats=20,
            filter=f,
        )
        for f in FILTERS
    ]
    return simulate(configs, preset=False, out=out / "simulate", baseline=True).summary


def report(summary: dict, contamination: float, how: str, simulated: dict) -> str:
    e, counts = summary["estimate"], summary["counts"]
    low, high = e["interval"]
    lines = [
        f"scanned {summary['source']}: {counts['ok']} images, {counts['error']} errors, {counts['flagged']} flagged",
        f"synthetic fraction {contamination:.2%} ({how}); 95% interval {low:.2%}-{high:.2%}; "
        f"hard lower bound {e['lower_bound']:.2%}",
        f"generators: {', '.join(summary['per_generator']) or 'none identified'}",
        "",
        f"self-consuming loop at contamination {round(contamination, 3)}, generation "
        f"{next(iter(simulated['final'].values()))['generation']} (mean over seeds):",
        f"{'configuration':<40} {'W2':>6} {'var ratio':>10} {'synthetic kept':>15}",
    ]
    for name, final in simulated["final"].items():
        lines.append(
            f"{name:<40} {final['w2']['mean']:>6.3f} {final['var_ratio']['mean']:>10.3f} "
            f"{final['kept_synthetic_share']['mean']:>15.1%}"
        )
    return "\n".join(lines + ["", f"verdict: {simulated['verdict']}"])


def tour(source: str | None, out: Path, bank: str | None = None) -> str:
    if source is None:
        images = build_demo_folder(out / "demo-images")
        source, bank = str(images), bank or str(demo_bank(images, out / "demo-bank"))
    summary = scan_folder(source, out, bank)
    contamination, how = contamination_of(summary)
    return report(summary, contamination, how, simulate_contamination(contamination, out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", help="what to scan (default: the demo folder, built here)")
    parser.add_argument("--bank", help="a bank of known synthetic images (`audit bank add`) to search too")
    parser.add_argument("--out", type=Path, help="keep the outputs here (default: a temporary folder)")
    args = parser.parse_args()
    if args.out is not None:
        print(tour(args.source, args.out, args.bank))
        print(f"\noutputs in {args.out}/scan (report.html, ...) and {args.out}/simulate (curves.png, ...)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(tour(args.source, Path(tmp), args.bank))


if __name__ == "__main__":
    main()
