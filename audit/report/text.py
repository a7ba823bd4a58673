"""The words every report format shares: the headline, what a corrected estimate rests on, the
caveats a reader must see, and the evidence of a flagged row. Below every renderer."""

from __future__ import annotations


def percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def headline(summary: dict) -> str:
    c, e = summary["counts"], summary["estimate"]
    low, high = e["interval"]
    interval = f"{int(100 * e['confidence'])}% CI {percent(low)}-{percent(high)}" + (
        ", widened to the sensitivity band: possible shift" if (e.get("shift") or {}).get("widened") else ""
    )
    hard = f"hard evidence on {c['hard_evidence']} ({percent(e['lower_bound'])}, a lower bound); {c['error']} errors"
    if e["operating_points"] is None:
        return f"{c['flagged']} of {c['ok']} images flagged ({percent(e['flagged_fraction'])}, {interval}); {hard}"
    point = "no point estimate" if e["point"] is None else f"estimated synthetic fraction {percent(e['point'])}"
    return f"{point} ({interval}, corrected with calibration); {c['flagged']} of {c['ok']} images flagged; {hard}"


def estimate_details(e: dict) -> list[str]:
    """What a corrected estimate rests on: the cross-check and the operating points used."""
    if e["operating_points"] is None:
        return []
    cross, points = e["cross_check"], e["operating_points"]
    rest, hard = points["rest"], points["hard_evidence"]
    low, high = points["tpr_minus_fpr_interval"]
    return [
        f"Cross-check, {cross['method']}: "
        + (percent(cross["point"]) if cross["point"] is not None else f"n/a ({cross.get('skipped', 'no estimate')})"),
        f"Operating point used, combined rule on calibration images without hard evidence: TPR {percent(rest['tpr'])} "
        f"({rest['tp']}/{rest['n_synthetic']}), FPR {percent(rest['fpr'])} ({rest['fp']}/{rest['n_real']}), "
        f"TPR - FPR {percent(points['tpr_minus_fpr'])} (95% CI {percent(low)} to {percent(high)})",
        f"Hard evidence in calibration: on {hard['tp']}/{hard['n_synthetic']} synthetic and "
        f"{hard['fp']}/{hard['n_real']} real images",
        *_estimate_robustness(e),
    ]


def _estimate_robustness(e: dict) -> list[str]:
    """The other adjusted count, the generator-shift band, the shift test and what the lower bound assumes."""
    lines = [
        f"Also computed, {other['method']}: "
        + (
            f"{percent(other['point'])} (95% CI {percent(other['interval'][0])} to {percent(other['interval'][1])})"
            if other.get("point") is not None
            else f"n/a ({other.get('skipped') or 'no separation'})"
        )
        for name, other in (e.get("estimators") or {}).items()
        if name != e.get("estimator")
    ]
    if e.get("sensitivity"):
        lines.append(f"Generator shift: {e['sensitivity']['note']}")
    shift = e.get("shift")
    if shift:
        lines.append(
            "Shift test: "
            + ("" if shift["tested"] else "not testable: ")
            + shift["reason"]
            + ("; the interval is widened to include the sensitivity band." if shift.get("widened") else ".")
        )
    if e.get("lower_bound_assumes"):
        lines.append(f"The lower bound assumes {e['lower_bound_assumes']}")
    return lines


def caveats(summary: dict) -> list[str]:
    """Lines a reader must see: skipped detectors and meaningless (random) embeddings."""
    lines = [f"WARNING: detector {name} did not run: {why}" for name, why in summary["skipped_detectors"].items()]
    return lines + [f"NOTE: {note}" for note in summary["notes"]]


def flag_evidence(row: dict, detectors) -> str:
    """The evidence of every detector that decided the row is synthetic."""
    return "; ".join(row[f"{d}_evidence"] for d in detectors if row[f"{d}_decision"] == "synthetic")


# The per-detector decision columns of every report, in this order, with their headers.
DECISION_COLUMNS = (
    ("synthetic", "synthetic"),
    ("no_evidence", "no evidence"),
    ("not_applicable", "not applicable"),
    ("real", "real (calibrated probe)"),
)


def decision_counts(counts: dict) -> list[int]:
    """A detector's decision counts in DECISION_COLUMNS order."""
    return [counts.get(key, 0) for key, _ in DECISION_COLUMNS]


def baseline_lines(summary: dict) -> list[str]:
    """How this scan compares with its `--baseline` scan (empty without one)."""
    b = summary.get("baseline")
    if not b:
        return []
    low, high = b["change_interval"]
    lines = [
        f"Since {b['baseline']}: {b['measure']} {percent(b['before'])} -> {percent(b['after'])} "
        f"({b['change']:+.2%}, interval {low:+.2%} to {high:+.2%}); hard lower bound "
        f"{percent(b['lower_bound_before'])} -> {percent(b['lower_bound_after'])}"
    ]
    if b["new_generators"]:
        lines.append("New generators since the baseline: " + ", ".join(b["new_generators"]))
    return lines + [_group_rise(g) for g in b["groups_rising"]]


def _group_rise(group: dict) -> str:
    """One line of a group whose flagged share rose since the baseline, or that is new."""
    name, after = group["name"], percent(group["after"])
    if group.get("before") is None and group.get("new"):
        return f"Flagged share of {name}: new in this scan (not in the baseline), {after}"
    if group.get("before") is None:
        return f"Flagged share of {name}: {after}; not among the groups the baseline's summary lists"
    return f"Flagged share of {name} rose: {percent(group['before'])} -> {after}"


# The breakdown by group (summary["groups"]) in every report: the title, then a row per group.
GROUP_HEADERS = ("images", "flagged", "flagged share", "hard evidence", "errors")


def group_title(groups: dict) -> str:
    return f"Breakdown by {groups['by']} ({groups['count']} groups, the most flagged share first)"


def group_cells(group: dict) -> list[str]:
    """A group's values in GROUP_HEADERS order."""
    return [
        str(group["ok"]),
        str(group["flagged"]),
        percent(group["flagged_share"]),
        str(group["hard_evidence"]),
        str(group["error"]),
    ]


def groups_left_out(groups: dict, shown: int) -> str | None:
    """The note under a group table that does not list every group, or None."""
    hidden = groups["count"] - shown
    return (
        f"{hidden} more groups, less flagged, are left out"
        + (" (all are in results.parquet)" if groups.get("left_off") else " (see summary.json)")
        if hidden > 0
        else None
    )
