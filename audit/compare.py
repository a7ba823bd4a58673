"""`audit scan --baseline OLD_OUT`: a scan against an earlier one (a previous version of the same
dataset): how the synthetic fraction and its hard lower bound moved, with intervals; generators
that are new; the groups whose flagged share rose most. `--fail-on-increase D` gates on the move."""

from __future__ import annotations

from pathlib import Path

from audit.engine.user_files import check_summary

MAX_LISTED_GROUPS = 10


def load_baseline(out: str | Path) -> dict:
    """The summary.json of an earlier scan's output folder, every field `compare` reads checked
    (UserFileError naming the file and the field)."""
    return check_summary(Path(out) / "summary.json", need_fraction=True)


def fraction(summary: dict) -> tuple[float, list[float], str]:
    """(value, interval, what it is): the corrected point estimate when there is one, else the
    flagged share; either with its interval."""
    e = summary["estimate"]
    if e.get("point") is not None:
        return e["point"], e["interval"], "synthetic fraction"
    return e["flagged_fraction"], e["interval"], "flagged fraction"


def compare(old: dict, new: dict, source_of_old: str) -> dict:
    """What summary.json's `baseline` holds."""
    old_value, old_interval, old_what = fraction(old)
    new_value, new_interval, new_what = fraction(new)
    old_lb, new_lb = old["estimate"].get("lower_bound") or 0.0, new["estimate"].get("lower_bound") or 0.0
    return {
        "baseline": source_of_old,
        "measure": new_what if new_what == old_what else f"{old_what} then, {new_what} now",
        "before": old_value,
        "after": new_value,
        "change": new_value - old_value,
        # the difference of two independent intervals, conservatively: its ends from opposite ends
        "change_interval": [new_interval[0] - old_interval[1], new_interval[1] - old_interval[0]],
        "lower_bound_before": old_lb,
        "lower_bound_after": new_lb,
        "lower_bound_change": new_lb - old_lb,
        "new_generators": sorted(set(new.get("per_generator", {})) - set(old.get("per_generator", {}))),
        "groups_rising": _groups_rising(old.get("groups"), new.get("groups")),
    }


def _groups_rising(old: dict | None, new: dict | None) -> list[dict]:
    """Groups (shard, folder or domain) whose flagged share rose, most first, when both scans were
    broken down the same way. A group the baseline does not list has `before` None: `new` True when
    the baseline lists all of its groups (the group is new in this scan), else None (it may have been
    among the groups the baseline's summary left off)."""
    if not old or not new or old.get("by") != new.get("by"):
        return []
    before = {g["group"]: g.get("flagged_share") or 0.0 for g in old.get("groups", [])}
    complete = not old.get("left_off")
    rising = [_group_change(g, before, complete) for g in new.get("groups", [])]
    rising = [g for g in rising if g["after"] > (g["before"] or 0.0)]
    return sorted(rising, key=lambda g: g["after"] - (g["before"] or 0.0), reverse=True)[:MAX_LISTED_GROUPS]


def _group_change(group: dict, before: dict, complete: bool) -> dict:
    name, after = group["group"], group.get("flagged_share") or 0.0
    if name in before:
        return {"name": name, "before": before[name], "after": after, "new": False}
    return {"name": name, "before": None, "after": after, "new": True if complete else None}
