"""The breakdown of a scan by group, so a dataset builder sees which sources to drop: per shard or
file (`shard`), per top-level folder (`folder`) or per URL domain (`domain`), with each group's
counts and flagged share, the most flagged first.

What a row's group is: `shard` is the tar or parquet file (the first part of a shard row's id; the
split of a Hugging Face dataset), and for a folder source its top-level folder; `folder` is the
first folder of the path (inside the shard for shard rows); `domain` is the host of the row's URL.
Rows without one are grouped under a name in parentheses. The default (`group_by=None`) is `domain`
when any row has a URL, else `shard` for shards, parquet files and datasets, else `folder`.
Groups are counted as rows stream by: memory grows with the number of groups (up to MAX_TRACKED),
never with the number of rows.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_GROUPS = 100  # groups listed in summary.json (the most flagged); the rest are counted
TOP_LEVEL = "(top level)"
NO_URL = "(no url)"
MAX_TRACKED = 100_000  # groups counted by name; the rows of any further group are counted together
OTHER_GROUPS = "(other groups)"


def _is_shard_row(row: dict) -> bool:
    uri = row.get("uri") or ""
    return (
        "#" in uri or uri.startswith("hf://") or (row.get("id") or "").split("/", 1)[0].endswith((".tar", ".parquet"))
    )


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


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _group_entry(name: str, counts: list[int]) -> dict:
    total, ok, flagged, hard = counts
    return {
        "group": name,
        "total": total,
        "ok": ok,
        "error": total - ok,
        "flagged": flagged,
        "hard_evidence": hard,
        "flagged_share": _share(flagged, ok),
        "hard_share": _share(hard, ok),
    }


class GroupTally:
    """Each group's counts, row by row, for every way of grouping until the default is known (it
    depends on whether any row has a URL). At most MAX_TRACKED groups are counted by name; rows of
    further groups are counted together under OTHER_GROUPS."""

    def __init__(self, group_by: str | None = None):
        self.by = group_by
        self.counts: dict[str, dict[str, list[int]]] = {by: {} for by in ([group_by] if group_by else GROUPERS)}
        self.any_url = self.any_shard = False

    def add(self, row: dict) -> None:
        if self.by is None:
            self.any_url = self.any_url or bool(row.get("url"))
            self.any_shard = self.any_shard or _is_shard_row(row)
        ok = row["status"] == "ok"
        for by, groups in self.counts.items():
            name = GROUPERS[by](row)
            counts = groups.get(name)
            if counts is None:
                counts = groups.setdefault(name if len(groups) < MAX_TRACKED else OTHER_GROUPS, [0, 0, 0, 0])
            counts[0] += 1
            if ok:
                counts[1] += 1
                counts[2] += bool(row["flagged"])
                counts[3] += bool(row["hard_evidence"])

    def breakdown(self) -> dict:
        """{"by", "groups": [...], "count", "left_off"}: every group's counts and flagged share, the most
        flagged share first (then the most flagged, then the name)."""
        by = self.by or ("domain" if self.any_url else "shard" if self.any_shard else "folder")
        groups = sorted(
            (_group_entry(name, counts) for name, counts in self.counts[by].items()),
            key=lambda g: (-(g["flagged_share"] or 0.0), -g["flagged"], g["group"]),
        )
        return {
            "by": by,
            "count": len(groups),
            "groups": groups[:MAX_GROUPS],
            "left_off": max(0, len(groups) - MAX_GROUPS),
        }


def breakdown(rows, group_by: str | None = None) -> dict:
    """GroupTally's breakdown of `rows`."""
    tally = GroupTally(group_by)
    for row in rows:
        tally.add(row)
    return tally.breakdown()
