"""The CI gate: checks on a scan summary, each passed or failed, and the exit code they imply."""

from __future__ import annotations

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3  # an unexpected error (a bug): never 1, which means only "gate failed"
# what --fail-above compares: the point estimate, the interval's upper end, or the upper end of the interval and
# the sensitivity band together (the most cautious: what the fraction could be if the rates shifted as calibration
# measured)
GATES = ("point", "upper", "band-upper")


DEFAULT_MAX_ERROR_RATE = 0.5


def gate_checks(
    summary: dict,
    fail_above: float | None,
    gate: str = "point",
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    fail_on_increase: float | None = None,
) -> list[dict]:
    """The scan's checks, each {name, passed, message, exit}. A scan that read no image fails always
    (exit 2). With a threshold (`fail_above`) the gate also fails when the synthetic fraction (the
    point, with `gate="upper"` the interval's upper end, with `gate="band-upper"` the larger of that and
    the sensitivity band's upper end) exceeds it or the share of error rows
    exceeds `max_error_rate` (exit 1), and when a detector the scan was asked for did not run (exit 2:
    the answer cannot be trusted). With `fail_on_increase` it fails when the fraction rose by more
    than that since the baseline scan (summary["baseline"], from `--baseline`)."""
    c, e = summary["counts"], summary["estimate"]
    checks = [_completed_check(summary)]
    if fail_above is not None:
        checks += [
            _fraction_check(c, e, fail_above, gate),
            _error_rate_check(summary, max_error_rate),
            _detectors_check(summary),
        ]
    if fail_on_increase is not None:
        checks.append(_increase_check(summary.get("baseline"), fail_on_increase))
    return checks


def _increase_check(comparison: dict | None, limit: float) -> dict:
    name = f"increase since the baseline <= {limit}"
    if comparison is None:
        return {"name": name, "passed": False, "exit": EXIT_USAGE, "message": "no baseline: give --baseline OLD_OUT"}
    change, (low, high) = comparison["change"], comparison["change_interval"]
    passed = change <= limit
    return {
        "name": name,
        "passed": passed,
        "exit": EXIT_THRESHOLD,
        "message": f"{comparison['measure']} {comparison['before']:.4f} -> {comparison['after']:.4f} "
        f"({change:+.4f}, interval {low:+.4f} to {high:+.4f}) {'<=' if passed else '>'} {limit} "
        f"since {comparison['baseline']}",
    }


def _completed_check(summary: dict) -> dict:
    c = summary["counts"]
    reasons = ", ".join(f"{n} {reason}" for reason, n in summary["errors"]["by_reason"].items())
    if c["ok"]:
        return {
            "name": "scan completed",
            "passed": True,
            "exit": EXIT_OK,
            "message": f"{c['total']} items, {c['ok']} scanned, {c['error']} errors",
        }
    return {
        "name": "scan completed",
        "passed": False,
        "exit": EXIT_USAGE,
        "message": f"no image of {summary['source']} could be read: {c['error']} errors ({reasons or 'none'})",
    }


def _error_rate_check(summary: dict, max_error_rate: float) -> dict:
    c = summary["counts"]
    rate = c["error"] / c["total"] if c["total"] else 0.0
    passed = rate <= max_error_rate
    return {
        "name": f"error share <= {max_error_rate}",
        "passed": passed,
        "exit": EXIT_THRESHOLD,
        "message": f"{c['error']} of {c['total']} items are errors ({rate:.1%}) "
        f"{'<=' if passed else '>'} --max-error-rate {max_error_rate}",
    }


def _detectors_check(summary: dict) -> dict:
    skipped = summary["skipped_detectors"]
    ran = ", ".join(summary["detectors"]) or "none"
    return {
        "name": "requested detectors ran",
        "passed": not skipped,
        "exit": EXIT_USAGE,
        "message": "; ".join(f"{name} did not run: {why}" for name, why in skipped.items()) or f"all ran ({ran})",
    }


def _fraction_check(c: dict, e: dict, fail_above: float, gate: str) -> dict:
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, not {gate!r}")
    name, value = _gated_value(e, gate)
    value = 0.0 if not c["ok"] else value  # nothing scanned: nothing synthetic
    if value is None:
        return {
            "name": f"{name} <= {fail_above}",
            "passed": False,
            "exit": EXIT_THRESHOLD,
            "message": f"no point estimate ({e['method']}): {' '.join(e['warnings'])}",
        }
    passed = value <= fail_above
    return {
        "name": f"{name} <= {fail_above}",
        "passed": passed,
        "exit": EXIT_THRESHOLD,
        "message": f"{name} {value:.4f} ({e['method']}; {c['flagged']}/{c['ok']} flagged, "
        f"{c['hard_evidence']} with hard evidence) {'<=' if passed else '>'} threshold {fail_above}",
    }


def _gated_value(e: dict, gate: str) -> tuple[str, float | None]:
    """What the gate compares, and its name."""
    if gate == "point":
        return "synthetic fraction", e["point"]
    upper = f"upper {e['confidence']:.0%} bound of the synthetic fraction"
    band = (e.get("sensitivity") or {}).get("upper")
    if gate == "upper" or band is None:  # without a calibration there is no band: the interval's end is all there is
        return upper + ("" if gate == "upper" else " (no sensitivity band: uncorrected estimate)"), e["interval"][1]
    return f"{upper} or of its sensitivity band", max(e["interval"][1], band)


def exit_code(checks: list[dict]) -> int:
    """0 when every check passed; else 2 when a failed check means the answer cannot be trusted
    (nothing read, a requested detector missing), else 1 (the threshold was exceeded)."""
    return max((c.get("exit", EXIT_THRESHOLD) for c in checks if not c["passed"]), default=EXIT_OK)
