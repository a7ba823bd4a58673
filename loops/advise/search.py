"""The search at one contamination: every fixed policy, then for each filter the smallest fresh
share that keeps quality within tolerance, coarse to fine.

Coarse: the shares of `grid` (default 25 %, 50 %, 75 %, 100 %) in order, until one passes. Fine:
bisection in steps of `step` between the last failing and the first passing coarse share (quality
improves with the fresh share, so the passing shares form an interval). Each evaluation is one
simulation with all its seeds (vectorised over seeds on the Gaussian backend), and identical
configurations are simulated once (a fresh share of 100 % without a filter is the control itself).
"""
from __future__ import annotations

from dataclasses import dataclass

from loops.advise.policies import Costs, Policy, cost_of, filter_families, fixed_policies
from loops.advise.quality import Quality, quality, scores
from loops.baselines import control_of


@dataclass
class Evaluated:
    policy: Policy
    quality: Quality
    cost: dict

    def record(self, tolerance: float) -> dict:
        return {"policy": self.policy.name, "filter": self.policy.filter, "fresh_share": self.policy.fresh,
                "loop": self.policy.loop, "reweight": self.policy.reweight,
                "within_tolerance": self.quality.within(tolerance), "quality_loss": self.quality.loss,
                "confidence": self.quality.confidence, "score": self.quality.score,
                **{k: round(v, 3) for k, v in self.cost.items()}}


@dataclass
class SearchSettings:
    base: object                      # a SimConfig: backend, sizes, bias, rates, seeds
    metric: str = "fid"
    tolerance: float = 0.1
    costs: Costs = Costs()
    detectors: tuple[str, ...] = ("watermark", "probe", "neardup")
    grid: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    step: float = 0.05


class Search:
    """All evaluations at one contamination `c` (`run()`), sorted by cost."""

    def __init__(self, settings: SearchSettings, c: float, simulate_rows):
        self.s, self.c, self.simulate_rows = settings, c, simulate_rows
        self.cache: dict = {}
        self.control_rows = simulate_rows(control_of(settings.base))
        self.control = scores(self.control_rows, settings.metric)

    def run(self) -> list[Evaluated]:
        found = {p: self.evaluate(p) for p in fixed_policies(self.s.detectors)}
        for family in filter_families(self.s.detectors):
            if not found[Policy(filter=family)].quality.within(self.s.tolerance):
                found.update(self._fresh_shares(family))
        return sorted(found.values(), key=lambda e: (e.cost["cost"], _parts(e.policy), e.quality.loss))

    def evaluate(self, policy: Policy) -> Evaluated:
        config = policy.config(self.s.base, self.c)
        if config not in self.cache:
            rows = self.control_rows if config == control_of(self.s.base) else self.simulate_rows(config)
            self.cache[config] = rows
        rows = self.cache[config]
        return Evaluated(policy, quality(rows, self.control, self.s.metric, self.s.tolerance),
                         cost_of(policy, rows, self.s.costs))

    def _fresh_shares(self, family: str) -> dict[Policy, Evaluated]:
        """Coarse grid, then bisection on the fine steps between the last failing and first passing share."""
        out: dict[Policy, Evaluated] = {}
        low, high = 0.0, None
        for share in self.s.grid:
            evaluated = out[Policy(filter=family, fresh=share)] = self.evaluate(Policy(filter=family, fresh=share))
            if evaluated.quality.within(self.s.tolerance):
                high = share
                break
            low = share
        if high is None:
            return out
        steps = [round(low + k * self.s.step, 4) for k in range(1, round((high - low) / self.s.step))]
        while steps:
            middle = steps[len(steps) // 2]
            evaluated = out[Policy(filter=family, fresh=middle)] = self.evaluate(Policy(filter=family, fresh=middle))
            steps = steps[:len(steps) // 2] if evaluated.quality.within(self.s.tolerance) else steps[len(steps) // 2 + 1:]
        return out


def cheapest(evaluated: list[Evaluated], tolerance: float) -> Evaluated | None:
    """The first policy within tolerance in cost order (ties: fewer interventions, smaller loss)."""
    return next((e for e in evaluated if e.quality.within(tolerance)), None)


def _parts(policy: Policy) -> int:
    return (policy.filter != "none") + (policy.fresh > 0) + (policy.loop != "fresh") + bool(policy.reweight)
