"""The breakdown of a scan by group, so a dataset builder sees which sources to drop: per shard or
file (`shard`), per top-level folder (`folder`) or per URL domain (`domain`), with each group's
counts and flagged share, the most flagged first.

What a row's group is: `shard` is the tar or parquet file (the first part of a shard row's id; the
split of a Hugging Face dataset), and for a folder source its top-level folder; `folder` is the
first folder of the path (inside the shard for shard rows); `domain` is the host of the row's URL.
Rows without one are grouped under a name in parentheses. The default (`group_by=None`) is `domain`
when any row has a URL, else `shard` for shards, parquet files and datasets, else `folder`.
"""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_GROUPS = 100  # groups listed in summary.json (the most flagged); the rest are counted
TOP_LEVEL = "(top level)"
NO_URL = "(no url)"


def _is_shard_row(row: dict) -> bool:
    uri = row.get("uri") or ""
    return "#" in uri or uri.startswith("hf://") or (row.get("id") or "").split("/", 1)[0].endswith((".tar", ".parquet"))


def _folder(row: dict) -> str:
    parts = (row.get("id") or "").split("/")
    parts = parts[1:] if _is_shard_row(row) else parts
    return parts[0] if len(parts) > 1 and parts[0] else TOP_LEVEL


def _shard(row: dict) -> str:
    return (row.get("id") or "").split("/", 1)[0] if _is_shard_row(row) else _folder(row)


def _domain(row: dict) -> str:
    try:
        host = urlsplit(row.get("url") or "").hostname
    except ValueError:
        host = None
    return (host[4:] if host.startswith("www.") else host) if host else NO_URL


GROUPERS = {"shard": _shard, "folder": _folder, "domain": _domain}


def default_group_by(rows: list[dict]) -> str:
    """`domain` when URLs are known, `shard` for shard-like sources, else `folder`."""
    if any(r.get("url") for r in rows):
        return "domain"
    return "shard" if any(_is_shard_row(r) for r in rows) else "folder"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _group_entry(name: str, rows: list[dict]) -> dict:
    ok = [r for r in rows if r["status"] == "ok"]
    flagged = sum(1 for r in ok if r["flagged"])
    hard = sum(1 for r in ok if r["hard_evidence"])
    return {"group": name, "total": len(rows), "ok": len(ok), "error": len(rows) - len(ok), "flagged": flagged,
            "hard_evidence": hard, "flagged_share": _share(flagged, len(ok)), "hard_share": _share(hard, len(ok))}


def breakdown(rows: list[dict], group_by: str | None = None) -> dict:
    """{"by", "groups": [...], "count", "left_off"}: every group's counts and flagged share, the most
    flagged share first (then the most flagged, then the name)."""
    by = group_by or default_group_by(rows)
    members: dict[str, list[dict]] = {}
    for row in rows:
        members.setdefault(GROUPERS[by](row), []).append(row)
    groups = sorted((_group_entry(name, found) for name, found in members.items()),
                    key=lambda g: (-(g["flagged_share"] or 0.0), -g["flagged"], g["group"]))
    return {"by": by, "count": len(groups), "groups": groups[:MAX_GROUPS],
            "left_off": max(0, len(groups) - MAX_GROUPS)}
