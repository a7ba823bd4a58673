"""Synthetic-fraction estimation: a hard lower bound, a corrected estimate and its interval.

Of the N scanned images, H carry hard evidence (generator watermark or metadata, near-exact bank
match) and count as known synthetic images; of the other M = N - H, F are flagged by the combined
rule (any detector says synthetic). Calibration (`audit calibrate`) supplies, on labelled held-out
images, the rate at which real images carry hard evidence (h_r), and on images *without* hard
evidence the combined rule's TPR and FPR and the probe's mean probability per class, with counts.

- Lower bound: H/N with a Clopper-Pearson interval. It assumes hard evidence has no false
  positives (`lower_bound_assumes` says so and what calibration measured); a warning says when
  calibration saw some.
- Estimate: pi = (H/N - h_r + rho * M/N) / (1 - h_r), clipped to [0, 1]: the hard count less its
  expected false positives among the (1 - pi) N real images, plus rho, the synthetic share among
  images without hard evidence. rho is an adjusted count, rho = (q - FPR) / (TPR - FPR) clipped to
  [0, 1], with q the scan's rate among images without hard evidence:
  - `pacc` (the default when the probe ran and the calibration has its statistics): q, TPR and
    FPR are mean probe probabilities (Bella et al. 2010's probabilistic adjusted count). It uses
    the whole score, not only which side of the threshold it falls on, so its error and interval
    are smaller (benchmarks/estimate_accuracy.py); it does not need calibrated probabilities.
  - `rg`: q, TPR and FPR are the combined rule's flag rates (Rogan and Gladen's adjusted
    classify-and-count): every detector's flags, the probe's included.
  Both assume prior shift: each class looks the same in the scan as in the calibration set. The
  estimate falls back to the other method when the default's detectors do not separate and the
  other's do, and to `rg` when neither separates.
- Cross-check: EM prior adjustment (Saerens et al. 2002) of the probe's probabilities on the images
  without hard evidence, from the synthetic share the probe was trained at. It also needs the
  probabilities to be calibrated, so it is reported, not gated on, and shown only when the probe's
  mean probabilities separate the classes (else it drifts to the boundaries: ~1.0 at pi = 0 with
  an inseparable probe); otherwise `skipped` says why. Its fixed point is the maximum-likelihood
  prior, found by bisection on the (monotone) likelihood derivative, so its time is bounded.
- Interval: percentile bootstrap over 1,000 joint resamples (fixed seed) of the scan and of the
  calibration set, drawn per cell (hard evidence, flagged without it, neither), so the cost does
  not grow with N. The scan's cells are multinomial draws (the plain bootstrap); each calibration
  class is reweighted by the Bayesian bootstrap (Rubin 1981) under Jeffreys' prior, cell shares
  ~ Dirichlet(counts + 1/2), because plain resampling never draws a false positive when
  calibration saw none and so treats FPR = 0 (or h_r = 0) as certain. h_r is drawn in the same
  replicate as the rates. Mean probabilities are drawn from their normal approximation (mean,
  variance / n). A resample with TPR - FPR <= 0 leaves rho undetermined: it counts as rho = 0 for
  the lower end and rho = 1 for the upper. The replicates are not clipped to [0, 1] before their
  percentiles are taken, only the interval's ends after; within a replicate rho is held only by the
  bound that widens that end (at most 1 for the lower end, at least 0 for the upper). Clipping rho at
  0 for the lower end pushed it above 0 on clean scans with hard-evidence false positives (coverage
  0.88-0.90); leaving it unclipped for the upper end let a negative rho pull it below the hard count
  (RG coverage 0.90 instead of 0.997 on the real files with 2-3 calibration images without hard
  evidence). When the detectors do not separate (below), the
  interval is widened to [lower end of the hard lower bound's interval, 1], as its warning says.
- Separation: `separable` is false, with a warning, when the lower end of TPR - FPR's bootstrap
  interval is below 0.1. With TPR - FPR <= 0 at the measured values there is no point estimate.
- Small calibrations: with fewer than 200 held-out images in a class a warning gives the
  resolution, the half-width of the interval the calibration alone leaves around this estimate.
- Shift: `sensitivity` is the band of estimates when the synthetic class's rate (TPR, or its mean
  probability) and the real class's (FPR, or its mean probability) move as far as `audit calibrate`
  measured over its leave-one-generator-out and leave-one-source-out folds (`shift.spread`; an older
  calibration's largest TPR drop; else DEFAULT_SHIFT lower for synthetic and higher for real images,
  said to be assumed): upper end at the lowest rates, lower end at the highest, each a bootstrap
  percentile. `shift` is the scan's test of prior shift (audit/shift.py: do the scan's probe scores
  fit a mixture of calibration's per-class scores?); when it rejects, a warning says so and the
  interval becomes its union with the band (`shift.widened`). When it does not reject but lacks the
  power to catch some of the band's moves at this scan's size, a warning says shift is not ruled out
  and the interval becomes its union with the band of those moves alone (`unverified_ranges`).
  Without probe scores it is not tested and says why.
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
SCORE_BINS = 10_000  # probe-score bins the EM cross-check runs on (a scan keeps these, not every score)
SMALL_CALIBRATION = 200  # held-out images per class below which the estimate warns about its resolution
DEFAULT_SHIFT = 0.1  # how far TPR may fall and FPR rise when calibration measured neither (the band's default)
DEFAULT_METHOD = "pacc"  # chosen by measurement: benchmarks/estimate_accuracy.py, README "Estimation"

RG_METHOD = (
    "adjusted classify-and-count (Rogan-Gladen) on images without hard evidence, "
    "hard evidence counted as synthetic less its false-positive rate"
)
PACC_METHOD = (
    "probabilistic adjusted count (PACC) of probe probabilities on images without hard evidence, "
    "hard evidence counted as synthetic less its false-positive rate"
)
METHODS = {"rg": RG_METHOD, "pacc": PACC_METHOD}
MEASURES = {"rg": "the combined rule's TPR - FPR", "pacc": "the probe's mean probability on synthetic minus real"}
SHIFT_KEYS = {"rg": "tpr_drop", "pacc": "score_drop"}  # calibration.json `shift`: the largest drops (older files)
SPREAD_KEYS = {"rg": ("tpr", "fpr"), "pacc": ("mean_score_synthetic", "mean_score_real")}  # `shift.spread`
SHIFT_MEASURES = {
    "rg": ("the combined rule's TPR", "the combined rule's FPR"),
    "pacc": ("the probe's mean probability on synthetic images", "the probe's mean probability on real images"),
}
EM_METHOD = "EM prior adjustment (Saerens et al. 2002) of probe probabilities on images without hard evidence"
HARD_EVIDENCE_NOTE = (
    "Images with hard evidence (generator watermark, generator metadata or a near-exact bank match) give a "
    "lower bound: it cannot exceed the true synthetic fraction as long as hard evidence has no false positives."
)
COMBINED_NOTE = (
    "Share flagged by any detector, including the probe's soft score: uncorrected for the detectors' "
    "false-positive and miss rates, so neither a bound nor an unbiased estimate."
)
NO_CALIBRATION = (
    "No calibration given (`--calibration DIR` from `audit calibrate`): the detectors' miss and "
    "false-positive rates are unknown, so the count is not corrected."
)


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


@dataclass(frozen=True)
class Soft:
    """The probe's probabilities on n images: their mean and variance."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, scores: np.ndarray) -> Soft:
        scores = np.asarray(scores, dtype=np.float64)
        return cls(int(scores.size), float(scores.mean()), float(scores.var())) if scores.size else cls(0, 0.0, 0.0)

    @classmethod
    def from_json(cls, entry: dict) -> Soft:
        return cls(int(entry["n"]), float(entry["mean"]), float(entry["variance"]))

    def to_json(self) -> dict:
        return {"n": self.n, "mean": self.mean, "variance": self.variance}

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` draws of the mean from its normal approximation (unclipped); NaN when n is 0."""
        if not self.n:
            return np.full(size, np.nan)
        return rng.normal(self.mean, np.sqrt(self.variance / self.n), size)


class ScoreStats:
    """The probe's probabilities on images without hard evidence, merged batch by batch in fixed memory:
    count, mean and sum of squared deviations (Chan et al.'s parallel update), and SCORE_BINS bins of
    count and sum, so EM runs on each bin's mean value (exact when a bin holds one distinct value)."""

    def __init__(self):
        self.n, self.mean, self.squares = 0, 0.0, 0.0
        self.counts = np.zeros(SCORE_BINS, dtype=np.int64)
        self.sums = np.zeros(SCORE_BINS, dtype=np.float64)

    def add(self, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        if not scores.size:
            return
        n, mean = self.n + scores.size, float(scores.mean())
        delta = mean - self.mean
        self.squares += float(((scores - mean) ** 2).sum()) + delta * delta * self.n * scores.size / n
        self.mean += delta * scores.size / n
        self.n = n
        bins = np.clip((scores * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        self.counts += np.bincount(bins, minlength=SCORE_BINS)
        self.sums += np.bincount(bins, weights=scores, minlength=SCORE_BINS)

    def soft(self) -> Soft:
        return Soft(self.n, self.mean, self.squares / self.n) if self.n else Soft(0, 0.0, 0.0)

    def binned(self) -> tuple[np.ndarray, np.ndarray]:
        """(each non-empty bin's mean value, its count)."""
        used = self.counts > 0
        return self.sums[used] / self.counts[used], self.counts[used]


class ScanEvidence:
    """What the estimate needs from a scan, added batch by batch: the cells (hard evidence, flagged
    without it, neither), all flagged images, and the probe's scores on images without and with hard evidence."""

    def __init__(self):
        self.hard = self.flagged = self.unflagged = self.flagged_total = 0
        self.scores = ScoreStats()  # probe scores of images without hard evidence
        self.hard_scores = ScoreStats()  # and of images with it (for the shift test)

    def add(self, hard: np.ndarray, flagged: np.ndarray, probe_scores: np.ndarray) -> None:
        """Per-image flags of ok images and their probe scores (NaN where none)."""
        hard, flagged = np.asarray(hard, dtype=bool), np.asarray(flagged, dtype=bool)
        scores = np.asarray(probe_scores, dtype=np.float64)
        self.hard += int(hard.sum())
        self.flagged += int((flagged & ~hard).sum())
        self.unflagged += int((~flagged & ~hard).sum())
        self.flagged_total += int(flagged.sum())
        self.scores.add(scores[~hard & ~np.isnan(scores)])
        self.hard_scores.add(scores[hard & ~np.isnan(scores)])

    @property
    def total(self) -> int:
        return self.hard + self.flagged + self.unflagged

    @property
    def cells(self) -> Cells:
        return Cells(self.hard, self.flagged, self.unflagged)


@dataclass(frozen=True)
class Rates:
    """What an adjusted count rests on, measured and as bootstrap draws: the scan's rate q among images
    without hard evidence and the calibration's TPR and FPR there."""

    q: float | None
    tpr: float | None
    fpr: float | None
    q_draws: np.ndarray
    tpr_draws: np.ndarray
    fpr_draws: np.ndarray


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    # The beta distribution's quantiles, as scipy.stats.beta.ppf computes them (the same Boost routine),
    # without importing scipy.stats (0.4 s at the end of every scan). Here, not at the top: scan
    # workers import this module and never need it.
    from scipy.special import betaincinv

    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def rogan_gladen(q: float | None, tpr: float | None, fpr: float | None) -> float | None:
    """(q - FPR) / (TPR - FPR) clipped to [0, 1]; None when TPR - FPR <= 0 or a rate is unknown."""
    if q is None or tpr is None or fpr is None or tpr - fpr <= 0:
        return None
    return min(1.0, max(0.0, (q - fpr) / (tpr - fpr)))


def raw_fraction(hard_share, real_hard_rate, rho, rest_share):
    """(H/N - h_r + rho * M/N) / (1 - h_r), unclipped: the hard count less the expected hard-evidence false
    positives among the real images, plus the synthetic images without hard evidence. Works on scalars and
    on arrays of bootstrap replicates alike; percentiles are taken of these, and clipped only after."""
    return (hard_share - real_hard_rate + rho * rest_share) / (1.0 - real_hard_rate)


def synthetic_fraction(hard_share, real_hard_rate, rho, rest_share):
    """`raw_fraction` clipped to [0, 1]."""
    return np.clip(raw_fraction(hard_share, real_hard_rate, rho, rest_share), 0.0, 1.0)


def em_prior(probabilities: np.ndarray, train_prior: float, weights: np.ndarray | None = None) -> float:
    """Saerens' EM estimate of the synthetic prior behind `probabilities` (calibrated at `train_prior`),
    each counted `weights` times (once when None).

    EM's fixed point maximises sum log(pi * a + (1 - pi) * b) with a = p / train_prior and
    b = (1 - p) / (1 - train_prior); that likelihood is concave in pi, so bisection on its
    derivative finds the same point in a bounded number of passes.
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    a, b = p / train_prior, (1 - p) / (1 - train_prior)
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64)

    def slope(pi: float) -> float:
        return float(np.sum(w * (a - b) / (pi * a + (1 - pi) * b)))

    if slope(0.0) <= 0:
        return 0.0
    if slope(1.0) >= 0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) > 0 else (low, middle)
    return (low + high) / 2


def replicate_fractions(
    share: np.ndarray, real_hard: np.ndarray, q: np.ndarray, tpr: np.ndarray, fpr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per bootstrap replicate the synthetic fraction's low and high value, unclipped. Each applies only the
    bound on rho that can widen its end of the interval: the low value caps rho at 1 and the high value
    floors it at 0 (rho is a share), neither clips the other way (that pushed the lower end above 0 on clean
    scans with hard-evidence false positives). TPR - FPR <= 0 (or undefined) leaves rho undetermined: it
    counts as 0 for the low value and 1 for the high."""
    rest = share[:, 1] + share[:, 2]
    separation = tpr - fpr
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (q - fpr) / separation
    undetermined = ~(separation > 0) | np.isnan(rho)
    return (
        raw_fraction(share[:, 0], real_hard, np.where(undetermined, 0.0, np.minimum(rho, 1.0)), rest),
        raw_fraction(share[:, 0], real_hard, np.where(undetermined, 1.0, np.maximum(rho, 0.0)), rest),
    )


def percentile_interval(low: np.ndarray, high: np.ndarray, confidence: float) -> list[float]:
    """The percentile interval of the replicates (low values for its lower end, high for its upper), clipped
    to [0, 1] only at the end."""
    alpha = 1.0 - confidence
    return [
        float(np.clip(np.quantile(low, alpha / 2), 0.0, 1.0)),
        float(np.clip(np.quantile(high, 1 - alpha / 2), 0.0, 1.0)),
    ]


def scan_estimate(evidence: ScanEvidence, detectors: list[str], calibration: dict | None, config) -> dict:
    """The summary's `estimate` for a scan: corrected when the calibration applies, else uncorrected."""
    reason = calibration_mismatch(calibration, detectors, config)
    if reason or not evidence.total:
        return uncorrected_estimate(
            evidence.flagged_total,
            evidence.hard,
            evidence.total,
            "probe" in detectors,
            reason=reason or "Nothing was scanned.",
        )
    return evidence_estimate(evidence, calibration)


def calibration_mismatch(calibration: dict | None, detectors: list[str], config) -> str | None:
    """Why the calibration cannot correct this scan, or None when it can."""
    if calibration is None:
        return NO_CALIBRATION
    if "combined_rest" not in calibration:
        return (
            "The calibration predates corrected estimation (no `combined_rest` operating point): "
            "re-run `audit calibrate`. The count is not corrected."
        )
    if set(calibration["detectors"]) != set(detectors):
        return (
            f"The calibration measured the detectors {sorted(calibration['detectors'])} but this scan ran "
            f"{sorted(detectors)}: the combined rule differs, so its operating point does not apply and the "
            "count is not corrected."
        )
    calibrated_probe = Path(config.calibration) / "probe" if config.calibration else None
    if "probe" in detectors and calibrated_probe and Path(config.probe).resolve() != calibrated_probe.resolve():
        return (
            f"This scan's probe ({config.probe}) is not the calibrated one ({calibrated_probe}): "
            "the count is not corrected."
        )
    return None


def calibration_cells(calibration: dict) -> tuple[Cells, Cells]:
    """Held-out synthetic and real images of the calibration as cells."""
    hard, rest = calibration["hard_evidence"], calibration["combined_rest"]
    return Cells(hard["tp"], rest["tp"], rest["fn"]), Cells(hard["fp"], rest["fp"], rest["tn"])


def soft_calibration(calibration: dict) -> tuple[Soft, Soft] | None:
    """The probe's probability statistics per class on held-out images without hard evidence, if measured."""
    soft = calibration.get("soft_rest")
    return (Soft.from_json(soft["synthetic"]), Soft.from_json(soft["real"])) if soft else None


def corrected_estimate(
    hard: np.ndarray,
    flagged: np.ndarray,
    probe_scores: np.ndarray,
    calibration: dict,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    method: str = DEFAULT_METHOD,
) -> dict:
    """The corrected estimate from per-image flags (hard evidence, combined rule), probe scores (NaN
    where none) and a calibration with `hard_evidence` and `combined_rest` operating points (and
    `soft_rest`, the probe's statistics, for PACC). `method` ("pacc" or "rg") is preferred when it
    applies and separates."""
    evidence = ScanEvidence()
    evidence.add(hard, flagged, probe_scores)
    return evidence_estimate(evidence, calibration, confidence, resamples, seed, method)


def evidence_estimate(
    evidence: ScanEvidence,
    calibration: dict,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    method: str = DEFAULT_METHOD,
) -> dict:
    """`corrected_estimate` from a scan's aggregated evidence (the scan's cells and probe-score statistics)."""
    scan = evidence.cells
    synthetic, real = calibration_cells(calibration)
    rng = np.random.default_rng(seed)
    share = scan.resample(rng, resamples) / max(scan.total, 1)
    syn, rl = synthetic.reweight(rng, resamples), real.reweight(rng, resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = {
            "rg": Rates(
                scan.rate(),
                synthetic.rate(),
                real.rate(),
                share[:, 1] / (share[:, 1] + share[:, 2]),
                syn[:, 1] / (syn[:, 1] + syn[:, 2]),
                rl[:, 1] / (rl[:, 1] + rl[:, 2]),
            )
        }
    soft = soft_calibration(calibration)
    skipped = {"pacc": _pacc_skipped(soft, evidence.scores.n)}
    if skipped["pacc"] is None:
        (s_syn, s_real), s_scan = soft, evidence.scores.soft()
        rates["pacc"] = Rates(
            s_scan.mean,
            s_syn.mean if s_syn.n else None,
            s_real.mean if s_real.n else None,
            s_scan.draw(rng, resamples),
            s_syn.draw(rng, resamples),
            s_real.draw(rng, resamples),
        )
    real_hard = real.hard / real.total if real.total else 0.0
    adjusted = {
        name: _adjusted(r, scan, share, real_hard, rl[:, 0], confidence, shift_ranges(calibration, name)[0])
        for name, r in rates.items()
    }
    chosen = _choose(adjusted, method)
    best = adjusted[chosen]
    lower_bound_interval = list(clopper_pearson(scan.hard, scan.total, confidence))
    interval = (
        best["interval"]
        if best["separable"]
        else [min(best["interval"][0], _widened_low(lower_bound_interval[0], real, confidence)), 1.0]
    )
    shift = _shift_check(evidence, calibration, best["band"], shift_ranges(calibration, "pacc")[0])
    if shift["widened"]:
        widen = (
            best["band"]
            if shift["rejected"]
            else band_interval(
                rates[chosen],
                share,
                rl[:, 0],
                unverified_ranges(
                    shift_ranges(calibration, chosen)[0],
                    shift["power"],
                    _matters(rates[chosen], scan, real_hard, best["interval"]),
                ),
                confidence,
            )
        )
        shift["widened_to"] = widen
        interval = [min(interval[0], widen[0]), max(interval[1], widen[1])]
    return {
        "method": METHODS[chosen],
        "estimator": chosen,
        "point": best["point"],
        "flagged_fraction": evidence.flagged_total / scan.total,
        "interval": interval,
        "confidence": confidence,
        "interval_method": f"bootstrap percentile, {resamples} joint resamples of scan and calibration (seed {seed})",
        "is_lower_bound": False,
        "lower_bound": scan.hard / scan.total,
        "lower_bound_interval": lower_bound_interval,
        "lower_bound_assumes": _lower_bound_assumes(real, confidence),
        "separable": best["separable"],
        "warnings": _warnings(synthetic, real, best, chosen, confidence) + _shift_warnings(shift, confidence),
        "cross_check": _em_cross_check(
            scan, evidence.scores, calibration, adjusted.get("pacc"), real_hard, skipped["pacc"]
        ),
        "estimators": {
            name: (
                {"method": METHODS[name], "skipped": skipped[name]}
                if name not in adjusted
                else {
                    "method": METHODS[name],
                    **{k: adjusted[name][k] for k in ("point", "interval", "rest_fraction", "separable")},
                }
            )
            for name in METHODS
        },
        "sensitivity": _sensitivity(best, chosen, calibration, confidence),
        "shift": shift,
        "calibration_resolution": best["resolution"],
        "operating_points": {
            "rest": calibration["combined_rest"],
            "hard_evidence": calibration["hard_evidence"],
            "real_hard_evidence_rate": real_hard,
            "tpr_minus_fpr": adjusted["rg"]["separation"],
            "tpr_minus_fpr_interval": adjusted["rg"]["separation_interval"],
            "soft": None
            if "pacc" not in adjusted
            else {
                "mean_synthetic": rates["pacc"].tpr,
                "mean_real": rates["pacc"].fpr,
                "n_synthetic": soft[0].n,
                "n_real": soft[1].n,
                "separation": adjusted["pacc"]["separation"],
                "separation_interval": adjusted["pacc"]["separation_interval"],
            },
        },
        "note": (
            "Corrected for the detectors' miss and false-positive rates measured by `audit calibrate` on "
            "images without hard evidence, and for hard evidence on real images; the interval also carries the "
            "calibration's uncertainty. " + HARD_EVIDENCE_NOTE
        ),
    }


def _pacc_skipped(soft: tuple[Soft, Soft] | None, scored: int) -> str | None:
    if soft is None:
        return (
            "the calibration has no statistics of the probe's probabilities (the probe did not run, or "
            "`audit calibrate` predates them)"
        )
    if not scored:
        return "no image without hard evidence has a probe score"
    return None


def _quantiles(values: np.ndarray, confidence: float) -> list[float | None]:
    alpha = 1.0 - confidence
    if np.isnan(values).any():
        return [None, None]
    return [float(q) for q in np.quantile(values, [alpha / 2, 1 - alpha / 2])]


def _adjusted(
    r: Rates,
    scan: Cells,
    share: np.ndarray,
    real_hard: float,
    real_hard_draws: np.ndarray,
    confidence: float,
    ranges: dict,
) -> dict:
    """One adjusted count: point, interval, separation, the calibration's resolution and the sensitivity band
    (`ranges`: how far the synthetic and the real class's rate may move, from `shift_ranges`)."""
    alpha = 1.0 - confidence

    def point(tpr_move: float = 0.0, fpr_move: float = 0.0) -> tuple[float | None, float | None]:
        return moved_point(r, scan, real_hard, tpr_move, fpr_move)

    low, high = replicate_fractions(share, real_hard_draws, r.q_draws, r.tpr_draws, r.fpr_draws)
    fixed = np.broadcast_to(scan.counts() / max(scan.total, 1), share.shape)  # the scan as measured
    q_fixed = np.full(len(share), np.nan if r.q is None else r.q)
    calibration_low, calibration_high = replicate_fractions(fixed, real_hard_draws, q_fixed, r.tpr_draws, r.fpr_draws)
    (syn_low, syn_high), (real_low, real_high) = ranges["synthetic"], ranges["real"]
    separation_interval = _quantiles(r.tpr_draws - r.fpr_draws, confidence)
    separation = None if r.tpr is None or r.fpr is None else r.tpr - r.fpr
    fraction, rho = point()
    return {
        "point": fraction,
        "rest_fraction": rho,
        "interval": percentile_interval(low, high, confidence),
        "separation": separation,
        "separation_interval": separation_interval,
        "separable": separation is not None
        and separation_interval[0] is not None
        and separation_interval[0] >= MIN_SEPARATION,
        "resolution": float(np.quantile(calibration_high, 1 - alpha / 2) - np.quantile(calibration_low, alpha / 2)) / 2,
        "band_point": [point(syn_high, real_high)[0], point(syn_low, real_low)[0]],
        "band": band_interval(r, share, real_hard_draws, ranges, confidence),
    }


def moved_point(
    r: Rates, scan: Cells, real_hard: float, tpr_move: float = 0.0, fpr_move: float = 0.0
) -> tuple[float | None, float | None]:
    """(point, rest share) with the synthetic class's rate moved by `tpr_move` and the real class's by `fpr_move`;
    (None, None) when the moved rates do not separate."""
    hard_share, rest_share = scan.hard / max(scan.total, 1), scan.rest / max(scan.total, 1)
    rho = rogan_gladen(r.q, None if r.tpr is None else r.tpr + tpr_move, None if r.fpr is None else r.fpr + fpr_move)
    if rho is None and scan.rest:
        return None, None
    return float(synthetic_fraction(hard_share, real_hard, rho or 0.0, rest_share)), rho


def band_interval(
    r: Rates, share: np.ndarray, real_hard_draws: np.ndarray, ranges: dict, confidence: float
) -> list[float]:
    """The sensitivity band: the lower end's percentile with both classes' rates at the high ends of their
    `ranges` (TPR higher, FPR higher), the upper end's with both at the low ends."""
    (syn_low, syn_high), (real_low, real_high) = ranges["synthetic"], ranges["real"]
    low, _ = replicate_fractions(share, real_hard_draws, r.q_draws, r.tpr_draws + syn_high, r.fpr_draws + real_high)
    _, high = replicate_fractions(share, real_hard_draws, r.q_draws, r.tpr_draws + syn_low, r.fpr_draws + real_low)
    return percentile_interval(low, high, confidence)


def unverified_ranges(ranges: dict, power: dict, matters) -> dict:
    """The part of `ranges` the shift test could not rule out and that would matter: a move is dropped when
    the test had power against it (power keys: "synthetic lower", "real higher", ...; without any power
    measured, none is), or when `matters(label, move)` says it would hardly move the estimate (a drop of
    the synthetic images' scores in a scan that holds almost none)."""
    from audit.shift import POWER

    def kept(label: str, word: str, move: float) -> float:
        unseen = not power or power.get(f"{label} {word}", 0.0) < POWER
        return move if unseen and matters(label, move) else 0.0

    return {label: (kept(label, "lower", low), kept(label, "higher", high)) for label, (low, high) in ranges.items()}


def _matters(r: Rates, scan: Cells, real_hard: float, interval: list[float]):
    """Whether a single move would shift the point by at least a tenth of the interval's width."""
    base = moved_point(r, scan, real_hard)[0]

    def matters(label: str, move: float) -> bool:
        moved = moved_point(r, scan, real_hard, *((move, 0.0) if label == "synthetic" else (0.0, move)))[0]
        return base is None or moved is None or abs(moved - base) >= (interval[1] - interval[0]) / 10

    return matters


def _choose(adjusted: dict, method: str) -> str:
    """`method` when computed and separable; else another one that separates; else rg, whose point exists only
    when the flag rates separate at all (PACC's mean probabilities of a useless probe differ by a hair)."""
    preferred = method if method in adjusted else "rg"
    if adjusted[preferred]["separable"]:
        return preferred
    return next((name for name, a in adjusted.items() if a["separable"]), "rg")


def _widened_low(lower_bound_low: float, real: Cells, confidence: float) -> float:
    """The hard lower bound's low end, less the hard-evidence false positives calibration allows (when it saw any)."""
    if not real.hard:
        return lower_bound_low
    rate = clopper_pearson(real.hard, real.total, confidence)[1]
    return float(max(0.0, (lower_bound_low - rate) / (1 - rate))) if rate < 1 else 0.0


def _lower_bound_assumes(real: Cells, confidence: float) -> str:
    high = clopper_pearson(real.hard, real.total, confidence)[1]
    return (
        f"hard evidence has no false positives; calibration saw hard evidence on {real.hard} of {real.total} real "
        f"images ({confidence:.0%} CI up to {high:.2%} of real images)"
    )


def shift_ranges(calibration: dict, name: str) -> tuple[dict, str]:
    """How far the synthetic and the real class's rate (TPR and FPR, or the probe's mean probabilities) may
    move from the calibrated values, as (low, high) each, and where that comes from: the spread `audit
    calibrate` measured over its leave-one-out folds (always including no move), the largest drop of an
    older calibration, or else DEFAULT_SHIFT lower for the synthetic and higher for the real class."""
    shift = calibration.get("shift") or {}
    spread = shift.get("spread") or {}
    entries = dict(zip(("synthetic", "real"), (spread.get(key) for key in SPREAD_KEYS[name])))
    if entries["synthetic"] is None and shift.get(SHIFT_KEYS[name]) is not None:
        entries["synthetic"] = {"min": -shift[SHIFT_KEYS[name]], "max": 0.0, "folds": None}
    defaults = {"synthetic": (-DEFAULT_SHIFT, 0.0), "real": (0.0, DEFAULT_SHIFT)}
    ranges, sources = {}, []
    for label, measure in zip(("synthetic", "real"), SHIFT_MEASURES[name]):
        entry = entries[label]
        if entry is None:
            ranges[label] = defaults[label]
            sources.append(
                f"{measure}: an assumed {DEFAULT_SHIFT:.2f} {'drop' if label == 'synthetic' else 'rise'} "
                "(calibration measured no spread)"
            )
            continue
        ranges[label] = (min(0.0, float(entry["min"])), max(0.0, float(entry["max"])))
        folds = (
            "the largest leave-one-generator-out drop"
            if entry.get("folds") is None
            else f"the spread over {entry['folds']} leave-one-out folds"
        )
        sources.append(f"{measure}: {ranges[label][0]:+.3f} to {ranges[label][1]:+.3f}, {folds} in calibration")
    return ranges, "; ".join(sources)


def _sensitivity(best: dict, name: str, calibration: dict, confidence: float) -> dict:
    ranges, source = shift_ranges(calibration, name)
    low, high = best["band_point"]
    band = (
        "there is no point estimate"
        if best["point"] is None
        else "the estimate ranges from "
        + " to ".join("undetermined (no separation left)" if v is None else f"{v:.2%}" for v in (low, high))
        + f" ({confidence:.0%} band {best['band'][0]:.2%} to {best['band'][1]:.2%})"
    )
    return {
        "tpr_drop": -ranges["synthetic"][0],
        "ranges": {k: list(v) for k, v in ranges.items()},
        "measure": SHIFT_MEASURES[name][0],
        "real_measure": SHIFT_MEASURES[name][1],
        "source": source,
        "point": [low, high],
        "interval": best["band"],
        "lower": best["band"][0],
        "upper": best["band"][1],
        "note": (
            f"If the rates on this scan differ from calibrated as far as allowed ({source}), with "
            f"{SHIFT_MEASURES[name][0]} lower than calibrated and {SHIFT_MEASURES[name][1]} lower for the "
            f"upper end, higher for the lower end: {band}. The interval assumes the scan's images look "
            "like the calibration's (the shift test checks it)."
        ),
    }


def _shift_check(evidence: ScanEvidence, calibration: dict, band: list[float], moves: dict) -> dict:
    """The shift test on the scan's probe scores (its power against the `moves` calibration measured), or why
    it could not run. `rejected`: the scores do not fit calibration; `warned`: rejected, or the probe ran but
    the test could not rule out a shift of the measured size (too few images, or none testable); `widened`:
    the interval became its union with the sensitivity band (whenever warned)."""
    from audit.shift import shift_test

    if not evidence.scores.n and not evidence.hard_scores.n:
        result = {
            "tested": False,
            "p_value": None,
            "rejected": False,
            "warned": False,
            "powered": False,
            "power": {},
            "reason": "no scanned image has a probe score (the probe did not run), so the scan's scores cannot "
            "be compared with the calibration's",
        }
    else:
        result = shift_test(
            {"rest": evidence.scores.counts, "hard": evidence.hard_scores.counts},
            calibration.get("score_distributions"),
            moves=moves,
        )
        result = {**result, "rejected": result["warned"], "warned": result["warned"] or not result["powered"]}
    return {**result, "widened": result["warned"], "band": band}


def _shift_warnings(shift: dict, confidence: float) -> list[str]:
    if not shift["warned"]:
        return []
    low, high = shift["widened_to"]
    if shift["rejected"]:
        return [
            f"Possible generator or source shift: {shift['reason']}. The detectors' rates on this scan may differ "
            f"from calibration's, so the estimate may be biased; the interval is widened to include the "
            f"sensitivity band ({confidence:.0%} band {low:.2%} to {high:.2%})."
        ]
    return [
        f"Generator or source shift not ruled out: {shift['reason']}. The interval is widened to include the "
        f"sensitivity band of the shifts the test could miss ({confidence:.0%} band {low:.2%} to {high:.2%})."
    ]


def _warnings(synthetic: Cells, real: Cells, best: dict, name: str, confidence: float) -> list[str]:
    warnings = []
    if not best["separable"]:
        low, high = best["separation_interval"]
        missing = [label for label, cells in (("synthetic", synthetic), ("real", real)) if not cells.rest]
        measured = (
            f"is unknown: the calibration has no {' and no '.join(missing)} image without hard evidence"
            if missing or best["separation"] is None or low is None
            else f"= {best['separation']:.3f} ({confidence:.0%} CI {low:.3f} to {high:.3f})"
        )
        warnings.append(
            "The detectors cannot separate synthetic from real images without hard evidence well enough: "
            f"{MEASURES[name]} {measured}; at least {MIN_SEPARATION} is needed. The interval is widened to "
            "[lower end of the hard-evidence lower bound's interval, 1]"
            + ("; there is no point estimate." if best["point"] is None else ".")
        )
    if real.hard:
        warnings.append(
            f"Hard evidence flagged {real.hard} of {real.total} real calibration images: the lower bound "
            f"is not guaranteed; the estimate subtracts the expected false positives "
            f"({real.hard / real.total:.2%} of the real images)."
        )
    smallest = min(synthetic.total, real.total)
    if smallest < SMALL_CALIBRATION:
        warnings.append(
            f"Small calibration: {real.total} real and {synthetic.total} synthetic held-out images. The calibration "
            f"alone leaves about ±{best['resolution']:.3f} on this estimate, and near 0 the point estimate is biased "
            f"upward (it cannot go below 0), so a gate on the point fires on clean data more often; at least "
            f"{SMALL_CALIBRATION} per class are advised (the documentation tabulates the gate's false-alarm rate per "
            "calibration size)."
        )
    return warnings


def _em_cross_check(
    scan: Cells, scores: ScoreStats, calibration: dict, pacc: dict | None, real_hard: float, pacc_skipped: str | None
) -> dict:
    prior = (calibration.get("probe") or {}).get("train_prior")
    if prior is None:
        skipped = "the probe did not run or was not trained by `audit calibrate` (its training prior is unknown)"
    elif not 0 < prior < 1:
        skipped = "the probe's training images were all of one class"
    elif not scores.n:
        skipped = "no image without hard evidence has a probe score"
    elif pacc is None:
        skipped = f"whether the probe's probabilities separate the classes is unknown: {pacc_skipped}"
    elif not pacc["separable"]:
        low = pacc["separation_interval"][0]
        skipped = (
            "the probe's probabilities do not separate the classes well enough (mean probability on synthetic "
            "minus real images without hard evidence "
            + (
                "unknown"
                if pacc["separation"] is None or low is None
                else f"{pacc['separation']:.3f}, lower end {low:.3f}"
            )
            + f"; at least {MIN_SEPARATION} is needed): EM would drift towards 0 or 1"
        )
    else:
        skipped = None
    if skipped:
        return {"method": EM_METHOD, "point": None, "skipped": skipped}
    values, counts = scores.binned()
    rho = em_prior(values, prior, counts)
    point = float(synthetic_fraction(scan.hard / scan.total, real_hard, rho, scan.rest / scan.total))
    return {"method": EM_METHOD, "point": point, "rest_fraction": rho, "train_prior": prior, "scored_images": scores.n}


def uncorrected_estimate(
    flagged: int,
    hard: int,
    scanned: int,
    soft_detectors: bool,
    confidence: float = CONFIDENCE,
    reason: str = NO_CALIBRATION,
) -> dict:
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
        "lower_bound_assumes": "hard evidence has no false positives (without a calibration its rate is not measured)",
        "separable": None,
        "warnings": [],
        "cross_check": None,
        "shift": {
            "tested": False,
            "p_value": None,
            "rejected": False,
            "warned": False,
            "widened": False,
            "powered": False,
            "power": {},
            "reason": "nothing is corrected, so there is no calibration to compare the scan with",
        },
        "operating_points": None,
        "note": " ".join(
            [reason, COMBINED_NOTE, HARD_EVIDENCE_NOTE] if soft_detectors else [reason, HARD_EVIDENCE_NOTE]
        ),
    }
