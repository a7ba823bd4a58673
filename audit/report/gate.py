"""The CI gate: checks on a scan summary, each passed or failed, and the exit code they imply."""
from __future__ import annotations

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3  # an unexpected error (a bug): never 1, which means only "gate failed"
GATES = ("point", "upper")  # what --fail-above compares: the point estimate or the interval's upper end


def gate_checks(summary: dict, fail_above: float | None, gate: str = "point") -> list[dict]:
    """Checks for the JUnit report; the fraction check exists only when a threshold is set. `gate`
    picks what is compared with the threshold: the point estimate or the interval's upper end."""
    c, e = summary["counts"], summary["estimate"]
    checks = [{
        "name": "scan completed",
        "passed": True,
        "message": f"{c['total']} items, {c['ok']} scanned, {c['error']} errors",
    }]
    if fail_above is not None:
        checks.append(_fraction_check(c, e, fail_above, gate))
    return checks


def _fraction_check(c: dict, e: dict, fail_above: float, gate: str) -> dict:
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, not {gate!r}")
    upper = gate == "upper"
    name = f"upper {e['confidence']:.0%} bound of the synthetic fraction" if upper else "synthetic fraction"
    value = 0.0 if not c["ok"] else e["interval"][1] if upper else e["point"]  # nothing scanned: nothing synthetic
    if value is None:
        return {"name": f"{name} <= {fail_above}", "passed": False,
                "message": f"no point estimate ({e['method']}): {' '.join(e['warnings'])}"}
    passed = value <= fail_above
    return {
        "name": f"{name} <= {fail_above}",
        "passed": passed,
        "message": f"{name} {value:.4f} ({e['method']}; {c['flagged']}/{c['ok']} flagged, "
                   f"{c['hard_evidence']} with hard evidence) {'<=' if passed else '>'} threshold {fail_above}",
    }


def exit_code(checks: list[dict]) -> int:
    return EXIT_OK if all(c["passed"] for c in checks) else EXIT_THRESHOLD
