"""`audit simulate --from-scan OUT/summary.json`: take the contamination and the detectors'
operating points from a scan, so the simulation answers "at the contamination my scan estimated,
does filtering with my detectors keep the next generations healthy?".

Contaminations: the scan's point estimate and both ends of its interval (the hard-evidence lower
bound when there is no point estimate). A corrected estimate (the scan had a calibration) is used as
it is: its interval already carries hard evidence with its measured false-positive rate (and, when the
scan's shift test warned, the sensitivity band), so raising it to the raw hard share would claim a
bound that does not hold once hard evidence has false positives. An uncorrected count (no
calibration) has nothing better: its values are raised to the hard share, which it assumes has no
false positives, and the role says so. Operating points: the per-detector TPR/FPR of the calibration
the scan used (`audit scan --calibration DIR`), when it had one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit.engine.user_files import UserFileError, check_summary
from loops.errors import ConfigError


@dataclass
class ScanInputs:
    path: str
    contaminations: list[float]
    roles: dict[float, str]  # contamination -> "point" / "interval low" / ...
    rates: dict[str, tuple[float, float]] = field(default_factory=dict)
    rates_source: str | None = None
    report: str | None = None  # the scan's report.html, when it sits beside the summary
    notes: list[str] = field(default_factory=list)
    detectors: list[str] = field(default_factory=list)  # the detectors the scan ran
    hard_counts: dict[str, int] = field(default_factory=dict)  # detector -> images it flagged synthetic
    items: int = 0  # images the scan read
    point: float | None = None  # the estimate's point

    def operating_points(self, names) -> tuple[dict[str, tuple[float, float]], list[str]]:
        """{detector: (tpr, fpr)} for `names` as far as the scan tells, and notes on the rest: the
        calibration's measured points first; for a hard-evidence detector without one, TPR = its
        flagged images / the estimated synthetic images (FPR 0: hard evidence, assumed); the probe
        and detectors the scan did not run keep the assumed defaults."""
        rates, notes, synthetic = {}, [], (self.point or 0.0) * self.items
        for name in names:
            if name in self.rates:
                rates[name] = self.rates[name]
            elif name not in self.detectors:
                notes.append(f"{name} did not run in the scan; its operating point is an assumed default")
            elif name in HARD_DETECTORS and synthetic >= 1:
                flagged = self.hard_counts.get(name, 0)
                rates[name] = (min(1.0, flagged / synthetic), 0.0)
                notes.append(
                    f"{name} without a calibration: TPR {rates[name][0]:.2f} = {flagged} images it flagged / "
                    f"{synthetic:.1f} synthetic images the scan estimates; FPR 0 assumed (hard evidence)"
                )
            else:
                notes.append(
                    f"{name} without a calibration: its operating point is an assumed default "
                    "(the scan cannot measure a soft score's error rates; run audit calibrate)"
                )
        return rates, notes

    def record(self) -> dict:
        """What summary.json and report.html say came from the scan."""
        return {
            "summary": self.path,
            "report": self.report,
            "contamination": {f"{c:g}": self.roles[c] for c in self.contaminations},
            "operating_points": {k: {"tpr": t, "fpr": f} for k, (t, f) in self.rates.items()},
            "operating_points_from": self.rates_source,
            "detectors": self.detectors,
        }


def read_scan(path) -> ScanInputs:
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    try:  # audit's one reader of side files: regular file, size and nesting limits, the fields' types
        summary = check_summary(path)
    except UserFileError as e:
        raise ConfigError(f"--from-scan {e}") from None
    estimate = summary["estimate"]
    roles = _contaminations(estimate)
    if not roles:
        raise ConfigError(f"--from-scan {path}: the scan has no estimate to simulate with")
    report = path.parent / "report.html"
    inputs = ScanInputs(str(path), sorted(roles), roles, report=str(report) if report.is_file() else None)
    _add_rates(inputs, summary.get("config") or {})
    _add_detectors(inputs, summary)
    described = ", ".join(f"{c:g} ({roles[c]})" for c in inputs.contaminations)
    inputs.notes.insert(0, f"contamination from the scan {path}: {described}")
    return inputs


HARD_DETECTORS = ("metadata", "watermark", "neardup")  # their evidence is hard: near-zero false positives


def _add_detectors(inputs: ScanInputs, summary: dict) -> None:
    """Which detectors ran (skipped ones left out), what each flagged, and how many images were read."""
    ran = summary.get("detectors") or (summary.get("config") or {}).get("detectors") or []
    skipped = summary.get("skipped_detectors") or {}
    inputs.detectors = [d for d in ran if isinstance(d, str) and d not in skipped]
    per = summary.get("per_detector") or {}
    inputs.hard_counts = {
        d: int(v.get("synthetic", 0))
        for d, v in per.items()
        if isinstance(v, dict) and isinstance(v.get("synthetic", 0), (int, float))
    }
    counts = summary.get("counts") or {}
    inputs.items = int(counts.get("ok") or 0) if isinstance(counts.get("ok"), (int, float)) else 0
    point = (summary.get("estimate") or {}).get("point")
    inputs.point = float(point) if isinstance(point, (int, float)) and 0 <= point <= 1 else None


def _contaminations(estimate: dict) -> dict[float, str]:
    """{contamination: role}. For an uncorrected count nothing is simulated below the hard-evidence
    lower bound: a lower value is raised to it, and its role says so (see the module docstring)."""
    interval = estimate.get("interval") or [None, None]
    candidates = [
        (estimate.get("point"), "point estimate"),
        (interval[0], "interval low"),
        (interval[1], "interval high"),
    ]
    bound = estimate.get("lower_bound")
    if estimate.get("point") is None:
        candidates.insert(0, (bound, "hard-evidence lower bound"))
    if estimate.get("operating_points") is not None:  # corrected: its interval accounts for hard evidence
        bound = None
    roles: dict[float, str] = {}
    for value, role in candidates:
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            continue
        if isinstance(bound, (int, float)) and value < bound:
            value, role = bound, f"{role} {value:g}, raised to the hard lower bound"
        roles.setdefault(round(float(value), 4), role)
    return roles


def _add_rates(inputs: ScanInputs, config: dict) -> None:
    from loops.mitigate.filters import load_rates

    calibration = config.get("calibration")
    if not calibration:
        inputs.notes.append(
            "the scan had no calibration: no measured operating points (what advise derives or "
            "assumes instead is noted per detector)"
        )
        return
    rates_file = Path(calibration) / "calibration.json"
    try:
        inputs.rates = load_rates(rates_file)
        inputs.rates_source = str(rates_file)
        inputs.notes.append(f"operating points of {', '.join(sorted(inputs.rates))} from {rates_file}")
    except ConfigError as e:
        inputs.notes.append(f"the scan's calibration could not be read ({e}); default operating points are used")
