"""Estimation accuracy: median |pi_hat - pi|, 95% interval coverage and lower-bound violations over
mixes with a known synthetic fraction pi in {0, 0.05, 0.2, 0.4}.

    python benchmarks/estimate_accuracy.py [--mixes 100] [--data ../shared/data] [--seed 0]

Every mix is estimated by `audit.estimate.corrected_estimate` (Rogan-Gladen, 1,000 bootstrap
resamples; the EM cross-check's error is shown beside it). A mix holds exactly round(pi * N)
synthetic images, so pi is its true share.

Labelled sets:
- real: the photographs (real-kodak; the photos and the sketch of real-vs-derived) and AI images
  (ai-metadata, ai-watermark, the img2img outputs of real-vs-derived) of ../shared/data, run through
  `audit calibrate`: the metadata and watermark detectors on the real files, the probe on a
  random-weights embedder (CLIP weights cannot be downloaded here). Per mix, each class is split
  at random into a calibration half and a pool half; the mix draws N = 200 images from the pool
  with replacement.
  - "real pipeline": the held-out images with the combined rule and probe scores calibrate
    wrote. The random probe cannot separate, so the estimator must widen and give no point.
  - "real + sim probe": every image, its real hard evidence, with the probe's score simulated
    per image (Gaussian scores, separation 1.5), as a working probe would give.
- simulated: labels, hard evidence on a share of the synthetic images and Gaussian probe scores
  (z ~ N(+-mu, 1), probability sigmoid(2 mu z), flagged at 0.5: TPR = Phi(mu), FPR = Phi(-mu));
  a fresh calibration set per mix. "sim overconfident probe" doubles the probe's logits (same
  flags, so the same TPR and FPR, but probabilities that are no longer calibrated, as trained
  probes' often are not on new data): why EM is the cross-check, not the default. "sim
  inseparable" (mu = 0.05, TPR - FPR = 0.04) checks that the interval widens.

Targets (issue): median error <= 0.03, coverage >= 0.90, no lower-bound violation. The speed
line times one estimate over 10^6 images (1,000 resamples).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from audit.estimate import corrected_estimate

FRACTIONS = (0.0, 0.05, 0.2, 0.4)
REAL_MIX_SIZE = 200
REAL_PROBE_MU = 1.5
PROBE_TRAIN_PRIOR = 0.5  # simulated probabilities are calibrated at a balanced training set
REAL_FOLDERS = {0: ["real-kodak/*.png", "real-vs-derived/real__*", "real-vs-derived/human-sketch*"],
                1: ["ai-metadata/*.png", "ai-watermark/*.png", "real-vs-derived/ai-img2img*"]}
COLUMNS = ("set", "pi", "mixes", "median |err|", "coverage", "median width", "no point", "LB violations",
           "EM median |err|", "not separable")
console = Console(stderr=True)


@dataclass(frozen=True)
class Scenario:
    name: str
    mu: float  # probe score separation
    hard_share: float  # share of synthetic images with hard evidence
    calibration_per_class: int
    mix_size: int
    overconfidence: float = 1.0  # factor on the probe's logits; 1 = calibrated probabilities


SIMULATED = (
    Scenario("sim strong", 1.5, 0.3, 500, 10_000),
    Scenario("sim weak", 0.75, 0.3, 500, 10_000),
    Scenario("sim small calibration", 1.5, 0.5, 100, 2_000),
    Scenario("sim overconfident probe", 1.5, 0.3, 500, 10_000, overconfidence=2.0),
    Scenario("sim inseparable", 0.05, 0.3, 500, 10_000),
)


@dataclass
class Items:
    """Labelled images: label (1 synthetic), hard evidence, combined-rule flag, probe probability."""
    label: np.ndarray
    hard: np.ndarray
    flagged: np.ndarray
    score: np.ndarray

    def take(self, index: np.ndarray) -> "Items":
        return Items(self.label[index], self.hard[index], self.flagged[index], self.score[index])


def simulated_items(n_synthetic: int, n_real: int, scenario: Scenario, rng: np.random.Generator) -> Items:
    label = np.r_[np.ones(n_synthetic, bool), np.zeros(n_real, bool)]
    hard = label & (rng.random(label.size) < scenario.hard_share)
    return with_probe(label, hard, scenario.mu, rng, scenario.overconfidence)


def with_probe(label: np.ndarray, hard: np.ndarray, mu: float, rng: np.random.Generator,
               overconfidence: float = 1.0) -> Items:
    """Gaussian probe scores as probabilities (calibrated at a balanced prior when overconfidence is 1);
    flagged = hard evidence or p >= 0.5."""
    z = rng.standard_normal(label.size) + np.where(label, mu, -mu)
    score = 1 / (1 + np.exp(-2 * mu * z * overconfidence))
    return Items(label, hard, hard | (score >= 0.5), score)


def calibration_of(items: Items, train_prior: float) -> dict:
    """The parts of calibration.json the estimator reads, measured on `items`."""
    y, hard, rest = items.label, items.hard, ~items.hard
    flagged = items.flagged
    return {
        "hard_evidence": {"tp": int((hard & y).sum()), "fp": int((hard & ~y).sum())},
        "combined_rest": {"tp": int((rest & y & flagged).sum()), "fn": int((rest & y & ~flagged).sum()),
                          "fp": int((rest & ~y & flagged).sum()), "tn": int((rest & ~y & ~flagged).sum())},
        "probe": {"train_prior": train_prior},
    }


def mix_from(pool: Items, pi: float, size: int, rng: np.random.Generator, replace: bool) -> Items:
    k = int(round(pi * size))
    synthetic, real = np.flatnonzero(pool.label), np.flatnonzero(~pool.label)
    index = np.r_[rng.choice(synthetic, k, replace=replace), rng.choice(real, size - k, replace=replace)]
    return pool.take(index)


def measure(mix: Items, calibration: dict, seed: int) -> dict:
    truth = float(mix.label.mean())
    e = corrected_estimate(mix.hard, mix.flagged, mix.score, calibration, seed=seed)
    low, high = e["interval"]
    em = e["cross_check"]["point"]
    return {"error": np.nan if e["point"] is None else abs(e["point"] - truth),
            "covered": low <= truth <= high, "width": high - low, "no_point": e["point"] is None,
            "violation": e["lower_bound"] > truth + 1e-12, "em_error": np.nan if em is None else abs(em - truth),
            "not_separable": not e["separable"]}


def simulated_mixes(scenario: Scenario, pi: float, mixes: int, rng: np.random.Generator) -> list[dict]:
    results = []
    for m in range(mixes):
        n = scenario.calibration_per_class
        calibration = calibration_of(simulated_items(n, n, scenario, rng), PROBE_TRAIN_PRIOR)
        k = int(round(pi * scenario.mix_size))
        mix = simulated_items(k, scenario.mix_size - k, scenario, rng)
        results.append(measure(mix, calibration, seed=m))
    return results


def split_mixes(items: Items, pi: float, mixes: int, train_prior: float, rng: np.random.Generator) -> list[dict]:
    """Per mix: a random half of each class calibrates, the mix is drawn from the other half."""
    results = []
    for m in range(mixes):
        in_calibration = np.zeros(items.label.size, bool)
        for cls in (True, False):
            members = np.flatnonzero(items.label == cls)
            in_calibration[rng.choice(members, members.size // 2, replace=False)] = True
        calibration = calibration_of(items.take(np.flatnonzero(in_calibration)), train_prior)
        mix = mix_from(items.take(np.flatnonzero(~in_calibration)), pi, REAL_MIX_SIZE, rng, replace=True)
        results.append(measure(mix, calibration, seed=m))
    return results


def real_items(data: Path, out: Path) -> tuple[Items, np.ndarray, float] | None:
    """Calibrate on the labelled real files once: per image what calibrate measured, the held-out
    mask and the probe's training prior."""
    if not data.is_dir():
        console.print(f"real data not found at {data}: the real sets are skipped")
        return None
    from audit.calibrate import ITEMS_FILE, calibrate
    from audit.engine.config import ScanConfig

    for label, patterns in REAL_FOLDERS.items():
        folder = out / ("synthetic" if label else "real")
        folder.mkdir(parents=True)
        for pattern in patterns:
            for path in sorted(data.glob(pattern)):
                (folder / path.name).symlink_to(path.resolve())
    console.print("calibrating on the labelled files of ../shared/data (random-weights embedder) ...")
    calibration = calibrate(str(out / "real"), str(out / "synthetic"), out / "calib", heldout=0.5,
                            config=ScanConfig(embedder="random", follow_links="all"), workers=1)
    table = pq.read_table(out / "calib" / ITEMS_FILE).to_pydict()
    items = Items(np.array(table["label"]) == 1, np.array(table["hard_evidence"]), np.array(table["flagged"]),
                  np.array([np.nan if s is None else s for s in table["probe_score"]]))
    return items, np.array(table["heldout"]), calibration["probe"].get("train_prior")


def summarise(name: str, pi: float | str, results: list[dict]) -> list[str]:
    col = {k: np.array([r[k] for r in results], dtype=float) for k in results[0]}

    def median(values: np.ndarray) -> str:
        return "n/a" if np.isnan(values).all() else f"{np.nanmedian(values):.4f}"

    return [name, str(pi), str(len(results)), median(col["error"]), f"{col['covered'].mean():.3f}",
            f"{np.median(col['width']):.3f}", f"{col['no_point'].mean():.2f}", str(int(col["violation"].sum())),
            median(col["em_error"]), f"{col['not_separable'].mean():.2f}"]


def time_million(rng: np.random.Generator) -> float:
    n = 1_000_000
    calibration = calibration_of(simulated_items(500, 500, SIMULATED[0], rng), PROBE_TRAIN_PRIOR)
    mix = simulated_items(200_000, n - 200_000, SIMULATED[0], rng)
    start = time.perf_counter()
    corrected_estimate(mix.hard, mix.flagged, mix.score, calibration)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixes", type=int, default=100, help="mixes per set and fraction")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    sets: dict[str, list[list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        real = real_items(args.data, Path(tmp))
    if real is not None:
        items, is_heldout, prior = real
        heldout = items.take(np.flatnonzero(is_heldout))
        sets["real pipeline"] = [split_mixes(heldout, pi, args.mixes, prior, rng) for pi in FRACTIONS]
        simulated_probe = with_probe(items.label, items.hard, REAL_PROBE_MU, rng)
        sets["real + sim probe"] = [split_mixes(simulated_probe, pi, args.mixes, PROBE_TRAIN_PRIOR, rng)
                                    for pi in FRACTIONS]
    for scenario in SIMULATED:
        sets[scenario.name] = [simulated_mixes(scenario, pi, args.mixes, rng) for pi in FRACTIONS]

    table = Table(title="estimate accuracy (Rogan-Gladen point, 95% bootstrap interval)", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, per_fraction in sets.items():
        for pi, results in zip(FRACTIONS, per_fraction):
            table.add_row(*summarise(name, pi, results))
        table.add_row(*summarise(name, "all", [r for results in per_fraction for r in results]), end_section=True)
    targeted = [r for name, per in sets.items() if name != "sim inseparable" and name != "real pipeline"
                for results in per for r in results]
    table.add_row(*summarise("targets: sim + real + sim probe", "all", targeted))
    Console(width=200).print(table)
    print(f"one estimate over 10^6 images (1,000 resamples, EM cross-check included): {time_million(rng):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
