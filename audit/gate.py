"""The CI gate: checks on a scan summary, each passed or failed, and the exit code they imply."""
from __future__ import annotations

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2


def gate_checks(summary: dict, fail_above: float | None) -> list[dict]:
    """Checks for the JUnit report; the fraction check exists only when a threshold is set."""
    c, e = summary["counts"], summary["estimate"]
    checks = [{
        "name": "scan completed",
        "passed": True,
        "message": f"{c['total']} items, {c['ok']} scanned, {c['error']} errors",
    }]
    if fail_above is not None:
        fraction = e["flagged_fraction"] or 0.0
        checks.append({
            "name": f"synthetic fraction <= {fail_above}",
            "passed": fraction <= fail_above,
            "message": f"flagged fraction {fraction:.4f} ({c['flagged']}/{c['ok']}, {e['method']}) "
                       f"{'<=' if fraction <= fail_above else '>'} threshold {fail_above}",
        })
    return checks


def exit_code(checks: list[dict]) -> int:
    return EXIT_OK if all(c["passed"] for c in checks) else EXIT_THRESHOLD
