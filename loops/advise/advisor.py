"""`advise()`: the least costly policy that keeps quality at every contamination the estimate allows
(the scan's point and both ends of its interval, or one given contamination), verified on seeds
the search never used.

1. Search (search.py) at the highest contamination, which binds: on the search seeds, each
   filter's smallest fresh share whose loss is within tolerance at its upper confidence bound.
2. Verify (verify.py) the leading candidates and runners-up on held-out seeds at every
   contamination: the recommendation is the first whose held-out upper bound at the highest
   contamination, and whose mean loss at every contamination, are within tolerance (and whose cost
   fits the budget, when one is given). When none of them holds, the leader's fresh share is raised
   a step at a time and verified again.
3. When nothing within the budget holds at the highest contamination: no recommendation, and for
   each end of the interval the cheapest policy there and the contamination up to which it stays safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from loops.advise.defaults import DEFAULTS, GAUSSIAN_HELDOUT, GAUSSIAN_REPEATS
from loops.advise.policies import NAMED_DETECTORS, Costs
from loops.advise.quality import LOWER_IS_BETTER, METRIC_GROUP
from loops.advise.search import Evaluated, Search, SearchSettings, ranked
from loops.advise.verify import Simulator, Verified, safe_up_to, verify_candidates
from loops.config import ConfigError, SimConfig, resolve, scenario


@dataclass
class AtContamination:
    contamination: float
    role: str
    evaluated: list[Evaluated]
    recommended: Evaluated | None = None


@dataclass
class Advice:
    settings: SearchSettings
    results: list[AtContamination]  # every contamination; the binding one holds the search
    verified: list[Verified] = field(default_factory=list)
    recommended: Verified | None = None
    per_end: list[dict] = field(default_factory=list)  # only without a recommendation
    notes: list[str] = field(default_factory=list)
    from_scan: dict | None = None
    elapsed_s: float = 0.0

    @property
    def binding(self) -> AtContamination:
        """The highest contamination: where the search ran."""
        return max(self.results, key=lambda r: r.contamination)

    @property
    def point(self) -> AtContamination:
        """The result at the point estimate (else the binding contamination)."""
        return next((r for r in self.results if r.role == "point estimate"), self.binding)

    @property
    def robust(self) -> bool | None:
        """Holds at every contamination searched (None: one contamination was given)."""
        if len(self.results) < 2:
            return None
        return self.recommended is not None

    def conclusion(self) -> str:
        from loops.advise.wording import conclusion

        return conclusion(self)

    def record(self) -> dict:
        s = self.settings
        point = self.point.contamination
        return {
            "conclusion": self.conclusion(),
            "robust": self.robust,
            "recommended": self.recommended.record(s, point) if self.recommended else None,
            "runners_up": [v.record(s, point) for v in self.verified if v is not self.recommended],
            "per_end": self.per_end,
            "metric": s.metric,
            "max_quality_loss": s.tolerance,
            "max_cost": s.max_cost,
            "costs": {"unit": "the price of one fresh, verified real item", "items": s.costs.table()},
            "detectors": list(s.detectors),
            "fresh_grid": list(s.grid),
            "fresh_step": s.step,
            "search_seeds": _seeds(s.base),
            "heldout_seeds": _seeds(s.heldout),
            "config": s.base.to_dict(),
            "from_scan": self.from_scan,
            "notes": self.notes,
            "contaminations": [
                {
                    "contamination": r.contamination,
                    "role": r.role,
                    "searched": r is self.binding,
                    "policies": [e.record(s.tolerance) for e in r.evaluated],
                }
                for r in self.results
            ],
            "elapsed_s": round(self.elapsed_s, 3),
        }


def advise(
    contamination: float | None = None,
    *,
    from_scan=None,
    config: SimConfig | None = None,
    metric: str = DEFAULTS["metric"],
    max_quality_loss: float = DEFAULTS["max_quality_loss"],
    costs: Costs = Costs(),
    detectors: tuple[str, ...] | None = None,
    filter_rates: dict | None = None,
    fresh_grid: tuple[float, ...] = DEFAULTS["fresh_grid"],
    fresh_step: float = DEFAULTS["fresh_step"],
    max_cost: float | None = None,
    heldout_repeats: int | None = None,
    out=None,
    progress=None,
) -> Advice:
    """Search the policy space and recommend the least costly policy within tolerance across the
    estimate's interval, verified on held-out seeds.

    contamination or from_scan (a scan's summary.json or its folder) give where to search;
    config: the backend, sizes, seeds and bias (default: the default scenario of `audit simulate`);
    detectors: the filters offered (default: the detectors the scan ran, else watermark, probe,
    neardup); filter_rates: {detector: (tpr, fpr)} (else the scan's calibrated or derived points);
    max_cost: a budget per generation; heldout_repeats: held-out seeds (default: as many as searched,
    200 on the Gaussian backend); out: folder for advice.json and report.html; progress(contamination,
    evaluations so far) is called after each simulation.
    """
    started = time.perf_counter()
    _check(metric, max_quality_loss, max_cost)
    points, notes, scan = _contaminations(contamination, from_scan)
    detectors, rates, detector_notes = _detectors(detectors, filter_rates, scan, config)
    base = _base(config, metric, rates, detectors)
    heldout = replace(base, seed=base.seed + base.repeats, repeats=heldout_repeats or _heldout_repeats(base))
    settings = SearchSettings(
        base, metric, max_quality_loss, costs, detectors, tuple(fresh_grid), fresh_step, heldout, max_cost
    )
    simulator = Simulator(progress)
    results = [AtContamination(c, role, []) for c, role in points]
    advice = Advice(settings, results, notes=notes + detector_notes, from_scan=scan.record() if scan else None)
    binding = advice.binding
    binding.evaluated = Search(settings, binding.contamination, simulator.at(binding.contamination)).run()
    advice.verified = verify_candidates(
        ranked(binding.evaluated, settings), settings, points, simulator, advice.point.contamination
    )
    advice.recommended = next((v for v in advice.verified if v.holds(settings, advice.point.contamination)), None)
    for r in results:
        r.recommended = advice.recommended.evaluated if advice.recommended else None
        if r is not binding:
            r.evaluated = [v.at(r.contamination) for v in advice.verified]
    if advice.recommended is None and len(results) > 1:
        advice.per_end = _per_end(advice, simulator)
    advice.elapsed_s = time.perf_counter() - started
    if out is not None:
        from loops.advise.report import write_advice

        write_advice(advice, out)
    return advice


def _check(metric: str, tolerance: float, max_cost: float | None) -> None:
    if metric not in METRIC_GROUP:
        raise ConfigError(f"--metric {metric!r} is not one of: {', '.join(METRIC_GROUP)}")
    if not 0 <= tolerance:
        raise ConfigError(f"--max-quality-loss must be at least 0, got {tolerance:g}")
    if max_cost is not None and not max_cost >= 0:
        raise ConfigError(f"--max-cost must be at least 0, got {max_cost:g}")


def _per_end(advice: Advice, simulator) -> list[dict]:
    """Without a recommendation: for each end of the interval, the cheapest policy that holds there
    (search seeds, upper bound) and the contamination up to which it stays within tolerance."""
    s, out = advice.settings, []
    low = min(advice.results, key=lambda r: r.contamination)
    for end in [low] + ([advice.binding] if advice.binding is not low else []):
        evaluated = (
            end.evaluated
            if end is advice.binding
            else Search(s, end.contamination, simulator.at(end.contamination)).run()
        )
        affordable = [e for e in ranked(evaluated, s) if s.max_cost is None or e.cost["cost"] <= s.max_cost]
        if not affordable:
            out.append({"role": end.role, "contamination": end.contamination, "policy": None, "safe_up_to": None})
            continue
        chosen = affordable[0]
        out.append(
            {
                "role": end.role,
                "contamination": end.contamination,
                "policy": chosen.policy.name,
                "cost": round(chosen.cost["cost"], 3),
                "quality_loss": chosen.quality.loss,
                "quality_upper": chosen.quality.upper,
                "safe_up_to": safe_up_to(chosen.policy, end.contamination, s, simulator),
            }
        )
    return out


def _contaminations(contamination, from_scan) -> tuple[list[tuple[float, str]], list[str], object]:
    if (contamination is None) == (from_scan is None):
        raise ConfigError("give one of --contamination and --from-scan")
    if from_scan is None:
        if not 0 <= contamination <= 1:
            raise ConfigError(f"--contamination must be between 0 and 1, got {contamination:g}")
        return [(float(contamination), "given")], [], None
    from loops.from_scan import read_scan

    scan = read_scan(from_scan)
    return [(c, scan.roles[c]) for c in scan.contaminations], scan.notes, scan


def _detectors(detectors, filter_rates, scan, config) -> tuple[tuple[str, ...], dict, list[str]]:
    """The filters offered and their operating points: what was asked, else what the scan ran."""
    from loops.mitigate.filters import DEFAULT_RATES

    notes: list[str] = []
    if detectors is None:
        detectors = tuple(d for d in scan.detectors if d in DEFAULT_RATES) if scan else NAMED_DETECTORS
        if scan:
            notes.append(f"filters offered: the detectors the scan ran ({', '.join(detectors) or 'none'})")
    image_world = config is not None and (config.model == "diffusion" or bool(config.dataset))
    if image_world and "metadata" in detectors:
        detectors = tuple(d for d in detectors if d != "metadata")
        notes.append("the metadata filter is left out: an image world publishes no generator metadata")
    rates = dict(filter_rates or {})
    if scan and not filter_rates:
        rates, scan_notes = scan.operating_points(detectors)
        notes += scan_notes
    return tuple(detectors), rates, notes


def _base(config: SimConfig | None, metric: str, rates: dict, detectors: tuple[str, ...]) -> SimConfig:
    """The configuration every policy is simulated from: resolved, with the metric the tolerance needs."""
    base = config or scenario()
    if base.repeats is None and base.model in (None, "gaussian") and not base.dataset:
        base = replace(base, repeats=GAUSSIAN_REPEATS)
    group = METRIC_GROUP[metric]
    base = replace(
        base,
        metrics=(group,),
        filter_rates=tuple(sorted((n, t, f) for n, (t, f) in rates.items())),
        loop="fresh",
        contamination=0.0,
        filter="none",
        filter_tpr=None,
        filter_fpr=None,
        reweight=None,
        union=tuple(detectors) if len(detectors) > 1 else (),
    )
    if base.model == "diffusion" or base.dataset:
        base = replace(base, metrics=("fid", "prdc") if group == "prdc" else ("fid",), union=())
    return resolve(base)[0]


def _heldout_repeats(base: SimConfig) -> int:
    return GAUSSIAN_HELDOUT if base.model == "gaussian" and base.repeats == GAUSSIAN_REPEATS else base.repeats


def _seeds(config) -> list[int]:
    """[first, last] seed of a configuration's runs."""
    return [config.seed, config.seed + config.repeats - 1]


__all__ = ["advise", "Advice", "AtContamination", "LOWER_IS_BETTER"]
