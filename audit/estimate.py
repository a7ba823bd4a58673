"""Synthetic-fraction estimation. For now: the hard-evidence count with an exact interval.

Until calibrated operating points are available, the only honest figure is the share of
images with hard evidence (generator watermark or metadata). Hard evidence has a near-zero
false-positive rate, so this is a lower bound on the true synthetic fraction.
"""
from __future__ import annotations

from scipy.stats import beta

UNCORRECTED_NOTE = (
    "Uncorrected count of images with hard evidence (generator watermark or metadata). "
    "Detectors miss synthetic images without such evidence, so this is a lower bound on the "
    "synthetic fraction, not an estimate of it."
)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def hard_evidence_estimate(flagged: int, scanned: int, confidence: float = 0.95) -> dict:
    low, high = clopper_pearson(flagged, scanned, confidence)
    return {
        "method": "hard-evidence count (uncorrected)",
        "flagged_fraction": flagged / scanned if scanned else None,
        "interval": [low, high],
        "confidence": confidence,
        "interval_method": "Clopper-Pearson",
        "is_lower_bound": True,
        "note": UNCORRECTED_NOTE,
    }
