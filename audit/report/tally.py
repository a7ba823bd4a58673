"""A scan's aggregates, added batch by batch as the rows stream past once: counts, decisions per
detector, generators and tools, groups, errors by reason, the estimate's evidence, score histograms,
near-duplicate clusters, and the first flagged and error rows the reports list. Memory is bounded by
those caps (and the number of distinct generators, tools and groups), never by the number of rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from audit.detectors.base import NO_EVIDENCE, SYNTHETIC
from audit.estimate import ScanEvidence
from audit.report.groups import GroupTally
from audit.sources.error_kinds import error_kind

LISTED_ROWS = 2000  # flagged and error rows the reports list; all are in results.parquet
MAX_NAMES = 10_000  # distinct generators or tools counted by name; more are counted as OTHER_NAMES
OTHER_NAMES = "(others)"
HISTOGRAM_BINS = 40  # over [0, 1]
HISTOGRAM_COLUMNS = ("probe_score", "neardup_score")
TESTED = (SYNTHETIC, NO_EVIDENCE)  # the watermark decisions of an image that was tested


@dataclass
class Listed:
    """What the reports show row by row: the first flagged rows and error rows in source order, and
    the histograms of score columns (counts in HISTOGRAM_BINS bins over [0, 1])."""

    flagged: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    histograms: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, row: dict) -> None:
        if row["status"] == "error":
            if len(self.errors) < LISTED_ROWS:
                self.errors.append(row)
            return
        if row["flagged"] and len(self.flagged) < LISTED_ROWS:
            self.flagged.append(row)
        for column in HISTOGRAM_COLUMNS:
            if row.get(column) is not None:
                counts = self.histograms.setdefault(column, np.zeros(HISTOGRAM_BINS, dtype=np.int64))
                counts[min(HISTOGRAM_BINS - 1, max(0, int(row[column] * HISTOGRAM_BINS)))] += 1

    @classmethod
    def of(cls, rows) -> Listed:
        listed = cls()
        for row in rows:
            listed.add(row)
        return listed


def _count(counter: Counter, name: str) -> None:
    counter[name if name in counter or len(counter) < MAX_NAMES else OTHER_NAMES] += 1


class ScanTally:
    """Feed it rows with `add`; read its fields (and `duplicates.summary()`) at the end."""

    def __init__(self, detectors, group_by: str | None, duplicates=None):
        self.detectors = list(detectors)
        self.total = self.ok = self.flagged = self.hard = self.watermark_tested = 0
        self.per_detector = {name: Counter() for name in self.detectors}
        self.generators, self.tools, self.error_reasons, self.error_kinds = Counter(), Counter(), Counter(), Counter()
        self.groups = GroupTally(group_by)
        self.evidence = ScanEvidence()
        self.listed = Listed()
        self.duplicates = duplicates  # a DuplicateTally when the scan clusters, else None

    def add(self, rows: list[dict]) -> None:
        ok_rows = [r for r in rows if r["status"] == "ok"]
        self.evidence.add(
            [bool(r["hard_evidence"]) for r in ok_rows],
            [bool(r["flagged"]) for r in ok_rows],
            [np.nan if r.get("probe_score") is None else r["probe_score"] for r in ok_rows],
        )
        self.total += len(rows)
        self.ok += len(ok_rows)
        for row in rows:
            self.groups.add(row)
            self.listed.add(row)
            if row["status"] == "ok":
                self._add_ok(row)
            else:
                _count(self.error_reasons, reason_category(row["error"]))
                self.error_kinds[row.get("error_kind") or error_kind(row["error"])] += 1

    def _add_ok(self, row: dict) -> None:
        self.flagged += bool(row["flagged"])
        self.hard += bool(row["hard_evidence"])
        self.watermark_tested += row.get("watermark_decision") in TESTED
        for name in self.detectors:
            self.per_detector[name][row[f"{name}_decision"]] += 1
        if row["generator"]:
            _count(self.generators, row["generator"])
        if row.get("tool"):
            _count(self.tools, row["tool"])
        if self.duplicates is not None:
            self.duplicates.add(row)


def reason_category(error: str) -> str:
    """The reason's category in words: the text before the first colon ("corrupt image", "unreadable", ...);
    `error_kind` is its stable code."""
    return error.split(":", 1)[0].strip()
