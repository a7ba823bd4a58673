"""`advise()`: the least costly policy that keeps quality, at the scan's estimate and at both ends of
its interval (or at one given contamination).

The inputs are the scrape's contamination (a number, or a scan's summary.json with its estimate,
interval and calibrated operating points), a tolerance on a named quality metric relative to the
all-real control, the costs, and the backend (the Gaussian toy by default, in the stated default
scenario of `audit simulate`). The recommendation is "robust" when the same policy wins at every
contamination searched, and "depends on the estimate" otherwise.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from loops.advise.policies import NAMED_DETECTORS, Costs
from loops.advise.quality import LOWER_IS_BETTER, METRIC_GROUP
from loops.advise.search import Evaluated, Search, SearchSettings, cheapest
from loops.config import ConfigError, SimConfig, resolve, scenario

GAUSSIAN_REPEATS = 100  # the Gaussian backend runs its seeds as one vectorised batch: many seeds are cheap


@dataclass
class AtContamination:
    contamination: float
    role: str
    evaluated: list[Evaluated]
    recommended: Evaluated | None


@dataclass
class Advice:
    settings: SearchSettings
    results: list[AtContamination]
    notes: list[str] = field(default_factory=list)
    from_scan: dict | None = None
    elapsed_s: float = 0.0

    @property
    def point(self) -> AtContamination:
        """The result at the point estimate (else the middle contamination)."""
        return next((r for r in self.results if r.role == "point estimate"),
                    self.results[len(self.results) // 2])

    @property
    def robust(self) -> bool | None:
        """Same recommendation everywhere (None: only one contamination was searched)."""
        if len(self.results) < 2:
            return None
        return len({r.recommended.policy if r.recommended else None for r in self.results}) == 1

    def conclusion(self) -> str:
        s = self.settings
        rec = self.point.recommended
        direction = "above" if LOWER_IS_BETTER[s.metric] else "below"
        head = (f"At contamination {self.point.contamination:g} ({self.point.role}), the cheapest policy that keeps "
                f"{s.metric.upper()} within {s.tolerance:.0%} {direction} the all-real control over "
                f"{s.base.generations} generations is: {rec.policy.name} (cost {rec.cost['cost']:.3g} per generation; "
                f"{rec.quality.confidence:.0%} of {s.base.repeats} seeds within tolerance).") if rec else \
            f"At contamination {self.point.contamination:g} no policy searched keeps quality within tolerance."
        if self.robust is None:
            return head + " Robustness not checked: one contamination was given."
        if self.robust:
            return head + " Robust: the same policy wins across the interval."
        others = "; ".join(f"{r.contamination:g} ({r.role}): {r.recommended.policy.name if r.recommended else 'none'}"
                           for r in self.results if r is not self.point)
        return head + f" Depends on the estimate: {others}."

    def record(self) -> dict:
        s = self.settings
        return {
            "conclusion": self.conclusion(), "robust": self.robust,
            "recommended": self.point.recommended.record(s.tolerance) if self.point.recommended else None,
            "metric": s.metric, "max_quality_loss": s.tolerance,
            "costs": {"fresh": s.costs.fresh, "discard": s.costs.discard},
            "detectors": list(s.detectors), "fresh_grid": list(s.grid), "fresh_step": s.step,
            "config": s.base.to_dict(), "from_scan": self.from_scan, "notes": self.notes,
            "contaminations": [{"contamination": r.contamination, "role": r.role,
                                "recommended": r.recommended.policy.name if r.recommended else None,
                                "policies": [e.record(s.tolerance) for e in r.evaluated]} for r in self.results],
            "elapsed_s": round(self.elapsed_s, 3),
        }


def advise(contamination: float | None = None, *, from_scan=None, config: SimConfig | None = None,
           metric: str = "fid", max_quality_loss: float = 0.1, costs: Costs = Costs(),
           detectors: tuple[str, ...] = NAMED_DETECTORS, filter_rates: dict | None = None,
           fresh_grid: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0), fresh_step: float = 0.05,
           out=None, progress=None) -> Advice:
    """Search the policy space and recommend the least costly policy within tolerance.

    contamination or from_scan (a scan's summary.json or its folder) give where to search;
    config: the backend, sizes, seeds and bias (default: the default scenario of `audit simulate`);
    filter_rates: {detector: (tpr, fpr)} (a scan's calibration overrides nothing given here);
    out: folder for advice.json and report.html (the recommended policy's curves against the
    baseline); progress(contamination, evaluations so far) is called after each simulation.
    """
    started = time.perf_counter()
    if metric not in METRIC_GROUP:
        raise ConfigError(f"--metric {metric!r} is not one of: {', '.join(METRIC_GROUP)}")
    if not 0 <= max_quality_loss:
        raise ConfigError(f"--max-quality-loss must be at least 0, got {max_quality_loss:g}")
    points, notes, scan = _contaminations(contamination, from_scan)
    rates = dict(filter_rates or {}) or (scan.rates if scan else {})
    base = _base(config, metric, rates)
    settings = SearchSettings(base, metric, max_quality_loss, costs, tuple(detectors), tuple(fresh_grid), fresh_step)
    results = []
    for c, role in points:
        evaluations = [0]

        def rows_of(cfg, c=c, count=evaluations):
            from loops.simulate import simulate

            rows = simulate(resolve(cfg)[0], preset=False).rows
            count[0] += 1
            if progress:
                progress(c, count[0])
            return rows

        evaluated = Search(settings, c, rows_of).run()
        results.append(AtContamination(c, role, evaluated, cheapest(evaluated, max_quality_loss)))
    advice = Advice(settings, results, notes, scan.record() if scan else None)
    advice.elapsed_s = time.perf_counter() - started
    if out is not None:
        from loops.advise.report import write_advice

        write_advice(advice, out)
    return advice


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


def _base(config: SimConfig | None, metric: str, rates: dict) -> SimConfig:
    """The configuration every policy is simulated from: resolved, with the metric the tolerance needs."""
    base = config or scenario()
    if base.repeats is None and base.model in (None, "gaussian") and not base.dataset:
        base = replace(base, repeats=GAUSSIAN_REPEATS)
    group = METRIC_GROUP[metric]
    base = replace(base, metrics=(group,), filter_rates=tuple(sorted((n, t, f) for n, (t, f) in rates.items())),
                   loop="fresh", contamination=0.0, filter="none", filter_tpr=None, filter_fpr=None, reweight=None)
    if base.model == "diffusion" or base.dataset:
        base = replace(base, metrics=("fid", "prdc") if group == "prdc" else ("fid",))
    return resolve(base)[0]
