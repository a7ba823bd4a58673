"""A scan's result rows on disk as they arrive, in memory no more than one part's worth.

Each finished batch is appended to the journal (written through at once, fsynced in groups: see
journal.py for what a kill and a machine crash can cost); every PART_ROWS rows the buffered rows
become a parquet part, OUT/results/part-NNNNNN.parquet, written atomically, and the journal starts
over. The items a resumed scan has done are the parts' `seq`
values, kept as ranges (rows arrive nearly in order, so there are few), plus the journal's rows.
A kill between a part's write and the journal's restart leaves rows in both; the part wins.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.engine.journal import JOURNAL_NAME, Journal

RESULTS_DIR = "results"
PART_ROWS = 10_000  # rows held in memory before they become a part


class SeqRanges:
    """A set of sequence numbers as sorted, disjoint [start, end) ranges."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, seq: int) -> None:
        i = bisect.bisect_right(self.starts, seq) - 1
        if i >= 0 and self.starts[i] <= seq < self.ends[i]:
            return
        joins_left = i >= 0 and self.ends[i] == seq
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == seq + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends.pop(i + 1)
            self.starts.pop(i + 1)
        elif joins_left:
            self.ends[i] = seq + 1
        elif joins_right:
            self.starts[i + 1] = seq
        else:
            self.starts.insert(i + 1, seq)
            self.ends.insert(i + 1, seq + 1)

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self.starts, seq) - 1
        return i >= 0 and seq < self.ends[i]

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self.starts, self.ends))


class ResultsStore:
    """Where the engine puts rows: `append(rows)` per batch, `close()` at the end."""

    def __init__(self, out: Path, identity: dict, resume: bool, schema: pa.Schema, part_rows: int | None = None):
        self.folder, self.schema, self.part_rows = out / RESULTS_DIR, schema, part_rows or PART_ROWS
        if not resume:
            for part in self.parts():
                part.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.done = SeqRanges()
        for part in self.parts():
            for seq in pq.read_table(part, columns=["seq"]).column("seq").to_pylist():
                self.done.add(seq)
        self.journal = Journal(out / JOURNAL_NAME, identity, resume, schema.names)
        self.buffer = [row for row in self.journal.rows if row["seq"] not in self.done]
        self.journal.rows = []  # the buffer holds them now
        for row in self.buffer:
            self.done.add(row["seq"])
        self.resumed = len(self.done)
        self.next_part = len(self.parts())

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def append(self, rows: list[dict]) -> None:
        self.journal.append(rows)
        self.buffer.extend(rows)
        if len(self.buffer) >= self.part_rows:
            self._flush()

    def close(self) -> None:
        self._flush()
        self.journal.close()

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_pylist(sorted(self.buffer, key=lambda r: r["seq"]), schema=self.schema)
        write_atomically(self.folder / f"part-{self.next_part:06d}.parquet", lambda p: pq.write_table(table, p))
        self.next_part += 1
        self.journal.restart()
        self.buffer = []

    def ordered_tables(self) -> Iterator[pa.Table]:
        """Every committed row in source order, a part at a time (call after close). Parts hold disjoint
        ranges of positions but for a few around a resume; those that overlap are sorted together."""
        for group in _overlapping(self.parts()):
            tables = [pq.read_table(part, schema=self.schema) for part in group]
            yield tables[0] if len(tables) == 1 else pa.concat_tables(tables).sort_by("seq")


def _overlapping(parts: list[Path]) -> Iterator[list[Path]]:
    """The parts in order of their first position, grouped where their position ranges overlap."""
    spans = []
    for part in parts:
        seq = pq.read_table(part, columns=["seq"]).column("seq")
        spans.append((pc.min(seq).as_py(), pc.max(seq).as_py(), part))
    group, end = [], -1
    for first, last, part in sorted(spans, key=lambda span: span[0]):
        if group and first > end:
            yield group
            group = []
        group.append(part)
        end = max(end, last)
    if group:
        yield group
