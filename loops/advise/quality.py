"""How far a policy's quality is from the all-real control, per seed and on average.

The score of a run is its metric averaged over the last half of the generations (at least the
last one), which steadies the toys' noisy FID. The loss against the control is relative and
paired by seed (each seed draws the same real data in every configuration): value / control - 1
for metrics where lower is better (FID, W2), 1 - value / control where higher is better (recall,
coverage, precision). A policy is within tolerance when its mean loss is at most the tolerance;
its confidence is the share of seeds within tolerance on their own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOWER_IS_BETTER = {"fid": True, "w2": True, "recall": False, "coverage": False, "precision": False}
METRIC_GROUP = {"fid": "fid", "w2": "moments", "recall": "prdc", "coverage": "prdc", "precision": "prdc"}


@dataclass
class Quality:
    loss: float            # relative loss of the mean scores against the control's
    confidence: float      # share of seeds within tolerance
    score: float           # mean score over seeds
    per_seed: list[float]  # each seed's relative loss

    def within(self, tolerance: float) -> bool:
        return self.loss <= tolerance


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
    return Quality(float(mean_loss), confidence, float(np.mean([mine[s] for s in seeds])), per_seed)


def _loss(value: float, control: float, metric: str) -> float:
    if control == 0:
        return 0.0 if value == 0 else float("inf")
    return value / control - 1 if LOWER_IS_BETTER[metric] else 1 - value / control
