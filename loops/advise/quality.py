"""How far a policy's quality is from the all-real control: per seed, on average, and its upper
confidence bound.

The score of a run is its metric averaged over the last half of the generations (at least the
last one), which steadies the toys' noisy FID. The loss against the control is relative and
paired by seed (each seed draws the same real data in every configuration): value / control - 1
for metrics where lower is better (FID, W2), 1 - value / control where higher is better (recall,
coverage, precision). `upper` is the one-sided 95 % percentile-bootstrap bound of that loss,
resampling seeds with replacement (pairs stay together), so a policy judged on `upper` passes only
when the seeds leave little doubt. `confidence` is the share of single seeds within tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOWER_IS_BETTER = {"fid": True, "w2": True, "recall": False, "coverage": False, "precision": False}
METRIC_GROUP = {"fid": "fid", "w2": "moments", "recall": "prdc", "coverage": "prdc", "precision": "prdc"}


BOOTSTRAP = 2000  # resamples of the seeds
UPPER_LEVEL = 0.95  # one-sided level of `upper`


@dataclass
class Quality:
    loss: float  # relative loss of the mean scores against the control's
    confidence: float  # share of seeds within tolerance
    score: float  # mean score over seeds
    per_seed: list[float]  # each seed's relative loss
    upper: float = float("nan")  # one-sided 95 % bootstrap upper bound of `loss`
    seeds: int = 0

    def within(self, tolerance: float) -> bool:
        """The mean loss is within tolerance."""
        return self.loss <= tolerance

    def surely_within(self, tolerance: float) -> bool:
        """Even the upper confidence bound of the mean loss is within tolerance."""
        return self.upper <= tolerance


def scores(rows: list[dict], metric: str) -> dict[int, float]:
    """{seed: the metric averaged over the last half of the generations}."""
    last = max(r["generation"] for r in rows)
    late = max(1, last // 2)
    by_seed: dict[int, list[float]] = {}
    for r in rows:
        if r["generation"] > last - late and r.get(metric) is not None:
            by_seed.setdefault(r["seed"], []).append(r[metric])
    return {seed: float(np.mean(v)) for seed, v in by_seed.items()}


def quality(rows: list[dict], control: dict[int, float], metric: str, tolerance: float) -> Quality:
    mine = scores(rows, metric)
    seeds = sorted(set(mine) & set(control))
    per_seed = [_loss(mine[s], control[s], metric) for s in seeds]
    mean_loss = _loss(np.mean([mine[s] for s in seeds]), np.mean([control[s] for s in seeds]), metric)
    confidence = float(np.mean([p <= tolerance for p in per_seed]))
    mine_v, control_v = np.array([mine[s] for s in seeds]), np.array([control[s] for s in seeds])
    return Quality(
        float(mean_loss), confidence, float(mine_v.mean()), per_seed, upper_bound(mine_v, control_v, metric), len(seeds)
    )


def upper_bound(mine: np.ndarray, control: np.ndarray, metric: str) -> float:
    """One-sided UPPER_LEVEL percentile-bootstrap bound of the relative loss of the means (seeds
    resampled in pairs; a fixed generator, so the same runs give the same bound)."""
    if len(mine) < 2:
        return float(_loss(float(mine.mean()), float(control.mean()), metric))
    picks = np.random.default_rng(0).integers(0, len(mine), size=(BOOTSTRAP, len(mine)))
    a, b = mine[picks].mean(axis=1), control[picks].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        losses = a / b - 1 if LOWER_IS_BETTER[metric] else 1 - a / b
    return float(np.quantile(np.nan_to_num(losses, nan=np.inf), UPPER_LEVEL))


def _loss(value: float, control: float, metric: str) -> float:
    if control == 0:
        return 0.0 if value == 0 else float("inf")
    return value / control - 1 if LOWER_IS_BETTER[metric] else 1 - value / control
