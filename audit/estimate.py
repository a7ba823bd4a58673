"""Synthetic-fraction estimation. For now: uncorrected counts with exact intervals.

Until the corrected estimator lands, two honest figures are reported: the share of images with
hard evidence (generator watermark, generator metadata, near-exact bank match), a lower bound
because hard evidence has a near-zero false-positive rate; and the share flagged by the
combined rule (any detector, including the probe), uncorrected for the detectors' error rates.
"""
from __future__ import annotations

from scipy.stats import beta

HARD_EVIDENCE_NOTE = (
    "Uncorrected count of images with hard evidence (generator watermark, generator metadata or a "
    "near-exact bank match). Detectors miss synthetic images without such evidence, so this is a lower "
    "bound on the synthetic fraction, not an estimate of it."
)
COMBINED_NOTE = (
    "Share flagged by any detector, including the probe's soft score: uncorrected for the detectors' "
    "false-positive and miss rates, so neither a bound nor an unbiased estimate."
)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def uncorrected_estimate(flagged: int, hard: int, scanned: int, soft_detectors: bool,
                         confidence: float = 0.95) -> dict:
    """The summary's `estimate`: the gated fraction, its interval, and the hard-evidence lower bound."""
    fraction = flagged / scanned if scanned else None
    return {
        "method": "combined-rule count (uncorrected)" if soft_detectors else "hard-evidence count (uncorrected)",
        "flagged_fraction": fraction,
        "interval": list(clopper_pearson(flagged, scanned, confidence)),
        "confidence": confidence,
        "interval_method": "Clopper-Pearson",
        "is_lower_bound": not soft_detectors,
        "lower_bound": hard / scanned if scanned else None,
        "lower_bound_interval": list(clopper_pearson(hard, scanned, confidence)),
        "note": COMBINED_NOTE + " " + HARD_EVIDENCE_NOTE if soft_detectors else HARD_EVIDENCE_NOTE,
    }
