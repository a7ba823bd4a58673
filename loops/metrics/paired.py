"""Judging a finding from a few seeds: paired statistics, bootstrap intervals over seeds, and a
three-way reading (the finding holds, it does not, or the runs cannot tell).

Every comparison is paired: each seed's configuration is compared with the same seed's reference
run (same code, same data draws), and the per-seed statistic is averaged over seeds. The interval
is the percentile bootstrap of that mean over seeds (resampling seeds with replacement). With 3
seeds it spans about the range of the seeds; with 5 it is narrower. A finding is

- **reproduced** when the whole interval lies on the side of the threshold the finding claims,
- **not reproduced** when the whole interval lies on the other side,
- **cannot tell** when the interval contains the threshold (both readings are compatible), or when
  fewer than MIN_SEEDS seeds ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SEEDS = 3
LEVEL = 0.95
DRAWS = 10_000
# bounded vs growing: the slope of log FID per generation over the last half of the generations;
# under 0.02 (FID growing by less than 2 % a generation, under 20 % over 9 generations) is bounded
GROWTH = 0.02


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    seeds: int

    def reading(self, threshold: float, claim: str) -> str:
        """'reproduced', 'not reproduced' or 'cannot tell' for a claim that the mean is 'above' or
        'below' the threshold."""
        if self.seeds < MIN_SEEDS or not np.isfinite([self.low, self.high]).all():
            return f"cannot tell (fewer than {MIN_SEEDS} seeds)" if self.seeds < MIN_SEEDS else "cannot tell"
        above, below = self.low > threshold, self.high < threshold
        if claim not in ("above", "below"):
            raise ValueError(f"claim must be 'above' or 'below', got {claim!r}")
        holds, fails = (above, below) if claim == "above" else (below, above)
        return "reproduced" if holds else "not reproduced" if fails else "cannot tell"

    def text(self, digits: str = ".2f", transform=None) -> str:
        f = transform or (lambda v: v)
        return f"{f(self.mean):{digits}} [{f(self.low):{digits}}, {f(self.high):{digits}}]"


def bootstrap_mean(values, level: float = LEVEL, draws: int = DRAWS, seed: int = 0) -> Interval:
    """The mean of per-seed values with its percentile bootstrap interval (seeds resampled)."""
    values = np.asarray([v for v in values if np.isfinite(v)], np.float64)
    if len(values) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(draws, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(values.mean()), float(low), float(high), len(values))


def paired_log_ratio(config: dict[int, float], reference: dict[int, float]) -> Interval:
    """Mean over seeds of log(config / reference), for the seeds both ran; exponentiate for a
    geometric-mean ratio with its interval."""
    seeds = sorted(set(config) & set(reference))
    return bootstrap_mean(
        [np.log(config[s] / reference[s]) if config[s] > 0 and reference[s] > 0 else np.nan for s in seeds]
    )


def paired_difference(config: dict[int, float], reference: dict[int, float], scale: float = 1.0) -> Interval:
    """Mean over seeds of config - scale * reference, for the seeds both ran."""
    seeds = sorted(set(config) & set(reference))
    return bootstrap_mean([config[s] - scale * reference[s] for s in seeds])


def last_half_slope(series: list[float]) -> float:
    """Least-squares slope per generation of log(value) over the last half of the generations
    (generation G/2 to G, both included)."""
    values = np.asarray(series, np.float64)
    start = (len(values) - 1) // 2
    tail = values[start:]
    if len(tail) < 2 or not np.all(tail > 0):
        return float("nan")
    return float(np.polyfit(np.arange(len(tail)), np.log(tail), 1)[0])


def growth_reading(slope: Interval) -> str:
    """'bounded' when the slope's interval lies under GROWTH, 'growing' when above, else 'cannot tell'."""
    reading = slope.reading(GROWTH, "below")
    return {"reproduced": "bounded", "not reproduced": "growing"}.get(reading, reading)
