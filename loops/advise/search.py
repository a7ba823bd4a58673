"""The search at one contamination, on the search seeds: every fixed policy, then for each filter
the smallest fresh share whose loss is within tolerance even at its upper confidence bound, coarse
to fine; and the ranking of what passed.

Coarse: the shares of `grid` (default 25 %, 50 %, 75 %, 100 %) in order, until one passes. Fine:
bisection in steps of `step` between the last failing and the first passing coarse share (quality
improves with the fresh share, so the passing shares form an interval up to noise). Each evaluation
is one simulation with all its seeds (vectorised over seeds on the Gaussian backend), and identical
configurations are simulated once (a fresh share of 100 % without a filter is the control itself).

Ranking (`ranked`): by cost, with the share each filter needs estimated between its last failing
and first passing evaluation (linear interpolation of the upper bound), so that two filters whose
needs differ by less than one step are told apart by the seeds (paired, so the difference is
precise) rather than by where the steps fall. Costs closer than half a fresh step are within what
the search resolves; among those the simpler policy (fewer interventions, fewer detectors) leads.
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
    estimated_cost: float | None = None  # cost at the interpolated share the policy's filter needs

    def record(self, tolerance: float) -> dict:
        return {
            "policy": self.policy.name,
            "filter": self.policy.filter,
            "fresh_share": self.policy.fresh,
            "loop": self.policy.loop,
            "reweight": self.policy.reweight,
            "within_tolerance": self.quality.surely_within(tolerance),
            "quality_loss": self.quality.loss,
            "quality_upper": self.quality.upper,
            "confidence": self.quality.confidence,
            "score": self.quality.score,
            "seeds": self.quality.seeds,
            **{k: round(v, 3) for k, v in self.cost.items()},
        }


@dataclass
class SearchSettings:
    base: object  # a SimConfig: backend, sizes, bias, rates, search seeds
    metric: str = "fid"
    tolerance: float = 0.1
    costs: Costs = Costs()
    detectors: tuple[str, ...] = ("watermark", "probe", "neardup")
    grid: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    step: float = 0.05
    heldout: object = None  # the same SimConfig on seeds the search never uses
    max_cost: float | None = None  # a budget per generation (None: none)

    @property
    def union(self) -> tuple[str, ...]:
        return self.detectors


class Search:
    """All evaluations at one contamination `c` (`run()`), sorted by cost."""

    def __init__(self, settings: SearchSettings, c: float, simulate_rows, base=None):
        self.s, self.c, self.simulate_rows = settings, c, simulate_rows
        self.base = base or settings.base
        self.cache: dict = {}
        self.control_rows = simulate_rows(control_of(self.base))
        self.control = scores(self.control_rows, settings.metric)

    def run(self) -> list[Evaluated]:
        found = {p: self.evaluate(p) for p in fixed_policies(self.s.detectors)}
        for family in reversed(filter_families(self.s.detectors)):  # the union first: it usually needs least
            if not found[Policy(filter=family)].quality.surely_within(self.s.tolerance):
                found.update(self._fresh_shares(family, self._best(found)))
        _estimate_costs(found, self.s)
        return sorted(found.values(), key=lambda e: (e.cost["cost"], _parts(e.policy), e.quality.loss))

    def evaluate(self, policy: Policy) -> Evaluated:
        config = policy.config(self.base, self.c)
        if config not in self.cache:
            rows = self.control_rows if config == control_of(self.base) else self.simulate_rows(config)
            self.cache[config] = rows
        rows = self.cache[config]
        return Evaluated(
            policy,
            quality(rows, self.control, self.s.metric, self.s.tolerance),
            cost_of(policy, rows, self.s.costs, self.s.union),
        )

    def _best(self, found: dict) -> float:
        """The lowest cost of a passing policy so far (inf: none)."""
        costs = [e.cost["cost"] for e in found.values() if e.quality.surely_within(self.s.tolerance)]
        return min(costs, default=float("inf"))

    def _fresh_shares(self, family: str, best: float = float("inf")) -> dict[Policy, Evaluated]:
        """Coarse grid, then bisection on the fine steps between the last failing and first passing
        share. Shares whose fresh items alone cost more than `best` (the cheapest passing policy so
        far) plus the margin the ranking treats as equal are not tried: the family cannot lead there."""
        out: dict[Policy, Evaluated] = {}
        low, high = 0.0, None
        margin = self.s.costs.fresh * self.s.base.samples_per_gen * self.s.step / 2
        affordable = (best + margin) / (self.s.costs.fresh * self.s.base.samples_per_gen or 1)
        for share in self.s.grid:
            if share > affordable:  # the largest affordable step instead (it cannot lead if that fails)
                share = round(self.s.step * int(affordable / self.s.step + 1e-9), 4)
                if share <= low:
                    return out
            evaluated = out[Policy(filter=family, fresh=share)] = self.evaluate(Policy(filter=family, fresh=share))
            if evaluated.quality.surely_within(self.s.tolerance):
                high = share
                break
            low = share
        if high is None:
            return out
        steps = [round(low + k * self.s.step, 4) for k in range(1, round((high - low) / self.s.step))]
        steps = [x for x in steps if x <= affordable]
        while steps:
            middle = steps[len(steps) // 2]
            evaluated = out[Policy(filter=family, fresh=middle)] = self.evaluate(Policy(filter=family, fresh=middle))
            passed = evaluated.quality.surely_within(self.s.tolerance)
            steps = steps[: len(steps) // 2] if passed else steps[len(steps) // 2 + 1 :]
        return out


def passing(evaluated: list[Evaluated], tolerance: float) -> list[Evaluated]:
    """Per filter family the smallest passing fresh share, and every passing fixed policy."""
    best: dict[tuple, Evaluated] = {}
    for e in evaluated:
        if not e.quality.surely_within(tolerance):
            continue
        key = (e.policy.filter, e.policy.loop, e.policy.reweight)
        if key not in best or e.policy.fresh < best[key].policy.fresh:
            best[key] = e
    return list(best.values())


def ranked(evaluated: list[Evaluated], settings: SearchSettings) -> list[Evaluated]:
    """The passing policies, the one to verify first leading (see the module docstring)."""
    candidates = sorted(passing(evaluated, settings.tolerance), key=_estimate)
    if not candidates:
        return []
    margin = settings.costs.fresh * settings.base.samples_per_gen * settings.step / 2
    close = [e for e in candidates if _estimate(e) <= _estimate(candidates[0]) + margin]
    lead = min(close, key=lambda e: (_parts(e.policy), e.policy.detectors_run(settings.union), _estimate(e)))
    return [lead] + [e for e in candidates if e is not lead]


def cheapest(evaluated: list[Evaluated], tolerance: float) -> Evaluated | None:
    """The first policy within tolerance (upper bound) in cost order (ties: fewer interventions, smaller loss)."""
    return next((e for e in evaluated if e.quality.surely_within(tolerance)), None)


def _estimate_costs(found: dict[Policy, Evaluated], settings: SearchSettings) -> None:
    """estimated_cost of each family's first passing share: its cost less the fresh items the
    interpolated crossing of the upper bound says it does not need."""
    n, tolerance = settings.base.samples_per_gen, settings.tolerance
    for e in found.values():
        e.estimated_cost = e.cost["cost"]
        below = [
            o
            for p, o in found.items()
            if (p.filter, p.loop, p.reweight) == (e.policy.filter, e.policy.loop, e.policy.reweight)
            and p.fresh < e.policy.fresh
            and not o.quality.surely_within(tolerance)
        ]
        if not below or not e.quality.surely_within(tolerance):
            continue
        last = max(below, key=lambda o: o.policy.fresh)
        a, b = last.quality.upper, e.quality.upper
        if a > tolerance >= b and a > b:
            crossing = last.policy.fresh + (e.policy.fresh - last.policy.fresh) * (a - tolerance) / (a - b)
            e.estimated_cost -= settings.costs.fresh * n * (e.policy.fresh - crossing)


def _estimate(e: Evaluated) -> float:
    return e.cost["cost"] if e.estimated_cost is None else e.estimated_cost


def _parts(policy: Policy) -> int:
    return (policy.filter != "none") + (policy.fresh > 0) + (policy.loop != "fresh") + bool(policy.reweight)
