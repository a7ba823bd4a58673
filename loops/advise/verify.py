"""Verification on held-out seeds: the search's leading candidates re-simulated on seeds it never
used, at every contamination the estimate allows.

A candidate holds when, on the held-out seeds, the upper confidence bound of its mean loss at the
highest contamination is within tolerance, its mean loss at every contamination is within
tolerance, and (with a budget) its cost at the point estimate fits. `heldout_within_share` is the
share of single held-out runs within tolerance at the highest contamination: how often one
training run would have stayed within it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loops.advise.defaults import MAX_RAISES, SAFE_STEP, VERIFIED
from loops.advise.policies import Policy, cost_of
from loops.advise.quality import quality, scores
from loops.advise.search import Evaluated
from loops.baselines import control_of
from loops.config import resolve


class Simulator:
    """Simulates resolved configurations once each (rows cached) and reports progress."""

    def __init__(self, progress=None):
        self.cache: dict = {}
        self.progress = progress

    def rows(self, config, contamination: float | None = None) -> list[dict]:
        from loops.config import labels
        from loops.simulate import run_loop

        resolved = resolve(config)[0]
        if resolved not in self.cache:
            self.cache[resolved] = run_loop(resolved, labels([resolved])[0])
            if self.progress:
                self.progress(contamination, len(self.cache))
        return self.cache[resolved]

    def at(self, contamination: float):
        """rows(config) at one contamination (what a Search calls)."""
        return lambda config: self.rows(config, contamination)

    def evaluate(self, policy: Policy, base, contamination: float, settings) -> Evaluated:
        """One policy on the seeds of `base`, against the control of the same seeds."""
        control = scores(self.rows(control_of(base), contamination), settings.metric)
        rows = self.rows(policy.config(base, contamination), contamination)
        return Evaluated(
            policy,
            quality(rows, control, settings.metric, settings.tolerance),
            cost_of(policy, rows, settings.costs, settings.union),
        )


@dataclass
class Verified:
    evaluated: Evaluated  # on the search seeds, at the highest contamination
    heldout: dict[float, Evaluated]  # on the held-out seeds, at every contamination

    @property
    def binding(self) -> Evaluated:
        return self.heldout[max(self.heldout)]

    def at(self, contamination: float) -> Evaluated:
        return self.heldout[contamination]

    def cost_at(self, contamination: float) -> dict:
        return self.heldout[contamination].cost

    def holds(self, settings, point: float) -> bool:
        return not self.failures(settings, point)

    def failures(self, settings, point: float) -> list[str]:
        """Why it does not hold (empty: it holds)."""
        tol, out = settings.tolerance, []
        if self.binding.quality.upper > tol:
            out.append(f"held-out upper bound {self.binding.quality.upper:+.1%} at {max(self.heldout):g}")
        out += [
            f"held-out loss {e.quality.loss:+.1%} at {c:g}"
            for c, e in sorted(self.heldout.items())
            if e.quality.loss > tol
        ]
        if settings.max_cost is not None and self.cost_at(point)["cost"] > settings.max_cost:
            out.append(f"cost {self.cost_at(point)['cost']:.3g} over the budget {settings.max_cost:g}")
        return out

    def record(self, settings, point: float) -> dict:
        held = self.binding.quality
        return {
            **self.evaluated.record(settings.tolerance),
            **{k: round(v, 3) for k, v in self.cost_at(point).items()},
            "cost_at": point,
            "quality_loss": self.evaluated.quality.loss,
            "quality_upper": self.evaluated.quality.upper,
            "heldout_quality_loss": held.loss,
            "heldout_upper": held.upper,
            "heldout_within_share": held.confidence,
            "heldout_seeds": held.seeds,
            "losses_by_contamination": {f"{c:g}": e.quality.loss for c, e in sorted(self.heldout.items())},
            "holds": self.holds(settings, point),
            "fails": self.failures(settings, point),
        }


def verify_candidates(
    candidates: list[Evaluated], settings, points: list[tuple[float, str]], simulator, point: float
) -> list[Verified]:
    """The first VERIFIED affordable candidates verified; when none holds, the leader's fresh share
    raised a step at a time (at most MAX_RAISES) until one does."""
    binding = max(c for c, _ in points)
    affordable = [e for e in candidates if settings.max_cost is None or e.cost["cost"] <= settings.max_cost]
    verified = [_verify(e, settings, points, simulator) for e in affordable[:VERIFIED]]
    if not verified or any(v.holds(settings, point) for v in verified):
        return verified
    lead = affordable[0].policy
    for k in range(1, MAX_RAISES + 1):
        share = round(lead.fresh + k * settings.step, 4)
        if share > 1 or lead.loop == "accumulate":
            break
        raised = replace(lead, fresh=share)
        v = _verify(simulator.evaluate(raised, settings.base, binding, settings), settings, points, simulator)
        verified.append(v)
        if v.holds(settings, point):
            break
    return verified


def _verify(e: Evaluated, settings, points, simulator) -> Verified:
    return Verified(e, {c: simulator.evaluate(e.policy, settings.heldout, c, settings) for c, _ in points})


def safe_up_to(policy: Policy, start: float, settings, simulator) -> float | None:
    """The highest contamination, from `start` upward in SAFE_STEP, up to which `policy` stays within
    tolerance at its upper bound on the search seeds (None: not even at `start`)."""
    safe, c = None, start
    while c <= 1.0 + 1e-9:
        if not simulator.evaluate(policy, settings.base, round(c, 4), settings).quality.surely_within(
            settings.tolerance
        ):
            break
        safe, c = round(c, 4), c + SAFE_STEP
    return safe
