"""Synthetic-fraction estimation: a hard lower bound, a corrected estimate and its interval.

Of the N scanned images, H carry hard evidence (generator watermark or metadata, near-exact bank
match) and count as known synthetic images; of the other M = N - H, F are flagged by the combined
rule (any detector says synthetic). Calibration (`audit calibrate`) supplies the combined rule's
TPR and FPR measured on labelled images *without* hard evidence, with their counts.

- Lower bound: H/N with a Clopper-Pearson interval. It cannot exceed the true fraction as long as
  hard evidence has no false positives; a warning says when calibration saw some.
- Estimate (the default, `point`): pi = (H + rho * M) / N, where rho, the synthetic share among
  images without hard evidence, is the adjusted classify-and-count of Rogan and Gladen,
  rho = (F/M - FPR) / (TPR - FPR), clipped to [0, 1]. It assumes prior shift: each class looks the
  same in the scan as in the calibration set. It is the default because it rests only on counts,
  all of which the bootstrap resamples.
- Cross-check: EM prior adjustment (Saerens et al. 2002) of the probe's probabilities on the images
  without hard evidence, from the synthetic share the probe was trained at. That takes the probe's
  score to be independent of hard evidence given the class (metadata and invisible watermarks do
  not change what the probe sees), and the probabilities to be calibrated, which RG does not
  need; so EM is reported, not gated on. Its fixed point is the maximum-likelihood prior, found
  by bisection on the (monotone) likelihood derivative, so its time is bounded.
- Interval: percentile bootstrap over 1,000 joint resamples (fixed seed) of the scan and of the
  calibration set, drawn per cell (hard evidence, flagged without it, neither), so the cost does
  not grow with N. The scan's cells are multinomial draws (the plain bootstrap); each calibration
  class is reweighted by the Bayesian bootstrap (Rubin 1981) under Jeffreys' prior, cell shares
  ~ Dirichlet(counts + 1/2), because plain resampling never draws a false positive when
  calibration saw none and so treats FPR = 0 as certain. A resample with TPR - FPR <= 0 leaves rho
  undetermined: it counts as rho = 0 for the lower end and rho = 1 for the upper. When the
  detectors do not separate (below), the interval is widened to [lower end of the hard lower
  bound's interval, 1], as its warning says.
- Separation: `separable` is false, with a warning, when the lower end of TPR - FPR's bootstrap
  interval is below 0.1. With TPR - FPR <= 0 at the measured counts there is no point estimate.
- Without a calibration that matches the scan's detectors: the uncorrected flagged share with a
  Clopper-Pearson interval and the lower bound, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0
MIN_SEPARATION = 0.1
PROBABILITY_EPS = 1e-12
BISECTION_STEPS = 60
JEFFREYS_PRIOR = 0.5

RG_METHOD = ("adjusted classify-and-count (Rogan-Gladen) on images without hard evidence, "
             "hard evidence counted as synthetic")
EM_METHOD = "EM prior adjustment (Saerens et al. 2002) of probe probabilities on images without hard evidence"
HARD_EVIDENCE_NOTE = (
    "Images with hard evidence (generator watermark, generator metadata or a near-exact bank match) give a "
    "lower bound: it cannot exceed the true synthetic fraction as long as hard evidence has no false positives."
)
COMBINED_NOTE = (
    "Share flagged by any detector, including the probe's soft score: uncorrected for the detectors' "
    "false-positive and miss rates, so neither a bound nor an unbiased estimate."
)
NO_CALIBRATION = ("No calibration given (`--calibration DIR` from `audit calibrate`): the detectors' miss and "
                  "false-positive rates are unknown, so the count is not corrected.")


@dataclass(frozen=True)
class Cells:
    """Image counts: with hard evidence, flagged without it, and neither."""

    hard: int
    flagged: int
    unflagged: int

    @property
    def rest(self) -> int:
        return self.flagged + self.unflagged

    @property
    def total(self) -> int:
        return self.hard + self.rest

    def rate(self) -> float | None:
        """Flagged share of the images without hard evidence."""
        return self.flagged / self.rest if self.rest else None

    def counts(self) -> np.ndarray:
        return np.array([self.hard, self.flagged, self.unflagged])

    def resample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` plain bootstrap resamples of the cell counts (size x 3): multinomial draws."""
        if not self.total:
            return np.zeros((size, 3), dtype=np.int64)
        return rng.multinomial(self.total, self.counts() / self.total, size=size)

    def reweight(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` Bayesian bootstrap draws of the cell shares (size x 3) under Jeffreys' prior."""
        return rng.dirichlet(self.counts() + JEFFREYS_PRIOR, size=size)


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import beta  # here, not at the top: scan workers import this module and never need it

    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def rogan_gladen(q: float | None, tpr: float | None, fpr: float | None) -> float | None:
    """(q - FPR) / (TPR - FPR) clipped to [0, 1]; None when TPR - FPR <= 0 or a rate is unknown."""
    if q is None or tpr is None or fpr is None or tpr - fpr <= 0:
        return None
    return min(1.0, max(0.0, (q - fpr) / (tpr - fpr)))


def em_prior(probabilities: np.ndarray, train_prior: float) -> float:
    """Saerens' EM estimate of the synthetic prior behind `probabilities` (calibrated at `train_prior`).

    EM's fixed point maximises sum log(pi * a + (1 - pi) * b) with a = p / train_prior and
    b = (1 - p) / (1 - train_prior); that likelihood is concave in pi, so bisection on its
    derivative finds the same point in a bounded number of passes.
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    a, b = p / train_prior, (1 - p) / (1 - train_prior)

    def slope(pi: float) -> float:
        return float(np.sum((a - b) / (pi * a + (1 - pi) * b)))

    if slope(0.0) <= 0:
        return 0.0
    if slope(1.0) >= 0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) > 0 else (low, middle)
    return (low + high) / 2


def bootstrap(scan: Cells, synthetic: Cells, real: Cells, resamples: int = RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE) -> dict:
    """Percentile intervals of the synthetic fraction and of TPR - FPR over joint resamples; a resample
    without a usable TPR - FPR (<= 0 or undefined) counts as rho = 0 for the lower end, 1 for the upper."""
    rng = np.random.default_rng(seed)
    s = scan.resample(rng, resamples) / max(scan.total, 1)  # cell shares
    syn, rl = synthetic.reweight(rng, resamples), real.reweight(rng, resamples)
    tpr, fpr = syn[:, 1] / (syn[:, 1] + syn[:, 2]), rl[:, 1] / (rl[:, 1] + rl[:, 2])
    separation = tpr - fpr
    rest = s[:, 1] + s[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip((s[:, 1] / rest - fpr) / separation, 0.0, 1.0)
    undetermined = ~(separation > 0) | np.isnan(rho)
    low = s[:, 0] + np.where(undetermined, 0.0, rho) * rest
    high = s[:, 0] + np.where(undetermined, 1.0, rho) * rest
    alpha = 1.0 - confidence
    return {
        "interval": [float(np.quantile(low, alpha / 2)), float(np.quantile(high, 1 - alpha / 2))],
        "separation_interval": [float(q) for q in np.quantile(separation, [alpha / 2, 1 - alpha / 2])],
    }


def scan_estimate(ok_rows: list[dict], detectors: list[str], calibration: dict | None, config) -> dict:
    """The summary's `estimate` for a scan: corrected when the calibration applies, else uncorrected."""
    hard = np.array([bool(r["hard_evidence"]) for r in ok_rows], dtype=bool)
    flagged = np.array([bool(r["flagged"]) for r in ok_rows], dtype=bool)
    reason = calibration_mismatch(calibration, detectors, config)
    if reason or not len(ok_rows):
        return uncorrected_estimate(int(flagged.sum()), int(hard.sum()), len(ok_rows), "probe" in detectors,
                                    reason=reason or "Nothing was scanned.")
    scores = np.array([np.nan if r.get("probe_score") is None else r["probe_score"] for r in ok_rows], dtype=float)
    return corrected_estimate(hard, flagged, scores, calibration)


def calibration_mismatch(calibration: dict | None, detectors: list[str], config) -> str | None:
    """Why the calibration cannot correct this scan, or None when it can."""
    if calibration is None:
        return NO_CALIBRATION
    if "combined_rest" not in calibration:
        return ("The calibration predates corrected estimation (no `combined_rest` operating point): "
                "re-run `audit calibrate`. The count is not corrected.")
    if set(calibration["detectors"]) != set(detectors):
        return (f"The calibration measured the detectors {sorted(calibration['detectors'])} but this scan ran "
                f"{sorted(detectors)}: the combined rule differs, so its operating point does not apply and the "
                "count is not corrected.")
    calibrated_probe = Path(config.calibration) / "probe" if config.calibration else None
    if "probe" in detectors and calibrated_probe and Path(config.probe).resolve() != calibrated_probe.resolve():
        return (f"This scan's probe ({config.probe}) is not the calibrated one ({calibrated_probe}): "
                "the count is not corrected.")
    return None


def calibration_cells(calibration: dict) -> tuple[Cells, Cells]:
    """Held-out synthetic and real images of the calibration as cells."""
    hard, rest = calibration["hard_evidence"], calibration["combined_rest"]
    return Cells(hard["tp"], rest["tp"], rest["fn"]), Cells(hard["fp"], rest["fp"], rest["tn"])


def corrected_estimate(hard: np.ndarray, flagged: np.ndarray, probe_scores: np.ndarray, calibration: dict,
                       confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """The corrected estimate from per-image flags (hard evidence, combined rule), probe scores (NaN
    where none) and a calibration with `hard_evidence` and `combined_rest` operating points."""
    scan = Cells(int(hard.sum()), int((flagged & ~hard).sum()), int((~flagged & ~hard).sum()))
    synthetic, real = calibration_cells(calibration)
    rho = rogan_gladen(scan.rate(), synthetic.rate(), real.rate())
    point = scan.hard / scan.total if not scan.rest else _fraction(scan, rho)
    boot = bootstrap(scan, synthetic, real, resamples, seed, confidence)
    separation = _separation(synthetic, real)
    separable = separation is not None and boot["separation_interval"][0] >= MIN_SEPARATION
    lower_bound_interval = list(clopper_pearson(scan.hard, scan.total, confidence))
    interval = boot["interval"] if separable else [min(boot["interval"][0], lower_bound_interval[0]), 1.0]
    return {
        "method": RG_METHOD,
        "point": point,
        "flagged_fraction": int(flagged.sum()) / scan.total,
        "interval": interval,
        "confidence": confidence,
        "interval_method": f"bootstrap percentile, {resamples} joint resamples of scan and calibration (seed {seed})",
        "is_lower_bound": False,
        "lower_bound": scan.hard / scan.total,
        "lower_bound_interval": lower_bound_interval,
        "separable": separable,
        "warnings": _warnings(synthetic, real, boot, separable, point, confidence),
        "cross_check": _em_cross_check(scan, hard, probe_scores, calibration),
        "operating_points": {
            "rest": calibration["combined_rest"],
            "hard_evidence": calibration["hard_evidence"],
            "tpr_minus_fpr": separation,
            "tpr_minus_fpr_interval": boot["separation_interval"],
        },
        "note": ("Corrected for the combined rule's miss and false-positive rates measured by `audit calibrate` on "
                 "images without hard evidence; the interval also carries the calibration's uncertainty. "
                 + HARD_EVIDENCE_NOTE),
    }


def uncorrected_estimate(flagged: int, hard: int, scanned: int, soft_detectors: bool,
                         confidence: float = CONFIDENCE, reason: str = NO_CALIBRATION) -> dict:
    """The flagged share with an exact interval, and the lower bound, with why nothing is corrected."""
    fraction = flagged / scanned if scanned else None
    return {
        "method": "combined-rule count (uncorrected)" if soft_detectors else "hard-evidence count (uncorrected)",
        "point": fraction,
        "flagged_fraction": fraction,
        "interval": list(clopper_pearson(flagged, scanned, confidence)),
        "confidence": confidence,
        "interval_method": "Clopper-Pearson",
        "is_lower_bound": not soft_detectors,
        "lower_bound": hard / scanned if scanned else None,
        "lower_bound_interval": list(clopper_pearson(hard, scanned, confidence)),
        "separable": None,
        "warnings": [],
        "cross_check": None,
        "operating_points": None,
        "note": " ".join([reason, COMBINED_NOTE, HARD_EVIDENCE_NOTE] if soft_detectors
                         else [reason, HARD_EVIDENCE_NOTE]),
    }


def _fraction(scan: Cells, rho: float | None) -> float | None:
    return None if rho is None else (scan.hard + rho * scan.rest) / scan.total


def _separation(synthetic: Cells, real: Cells) -> float | None:
    tpr, fpr = synthetic.rate(), real.rate()
    return None if tpr is None or fpr is None else tpr - fpr


def _warnings(synthetic: Cells, real: Cells, boot: dict, separable: bool, point: float | None,
              confidence: float) -> list[str]:
    warnings = []
    if not separable:
        low, high = boot["separation_interval"]
        missing = [name for name, cells in (("synthetic", synthetic), ("real", real)) if not cells.rest]
        separation = _separation(synthetic, real)
        measured = (f"is unknown: the calibration has no {' and no '.join(missing)} image without hard evidence"
                    if missing else f"= {separation:.3f} ({confidence:.0%} CI {low:.3f} to {high:.3f})")
        warnings.append(
            "The detectors cannot separate synthetic from real images without hard evidence well enough: "
            f"their TPR - FPR {measured}; at least {MIN_SEPARATION} is needed. The interval is widened to "
            "[lower end of the hard-evidence lower bound's interval, 1]" + ("; there is no point estimate." if point is None else "."))
    if real.hard:
        warnings.append(f"Hard evidence flagged {real.hard} of {real.total} real calibration images: "
                        "the lower bound is not guaranteed.")
    return warnings


def _em_cross_check(scan: Cells, hard: np.ndarray, probe_scores: np.ndarray, calibration: dict) -> dict:
    prior = (calibration.get("probe") or {}).get("train_prior")
    scores = probe_scores[~hard & ~np.isnan(probe_scores)]
    if prior is None:
        skipped = "the probe did not run or was not trained by `audit calibrate` (its training prior is unknown)"
    elif not 0 < prior < 1:
        skipped = "the probe's training images were all of one class"
    elif not len(scores):
        skipped = "no image without hard evidence has a probe score"
    else:
        skipped = None
    if skipped:
        return {"method": EM_METHOD, "point": None, "skipped": skipped}
    rho = em_prior(scores, prior)
    return {"method": EM_METHOD, "point": _fraction(scan, rho), "rest_fraction": rho,
            "train_prior": prior, "scored_images": int(len(scores))}
