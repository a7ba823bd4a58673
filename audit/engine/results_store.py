"""A scan's result rows on disk as they arrive, in memory no more than one part's worth.

Each finished batch is appended to the journal (fsynced, so a kill loses nothing); every
PART_ROWS rows the buffered rows become a parquet part, OUT/results/part-NNNNNN.parquet, written
atomically, and the journal starts over. The items a resumed scan has done are the parts' `seq`
values, kept as ranges (rows arrive nearly in order, so there are few), plus the journal's rows.
A kill between a part's write and the journal's restart leaves rows in both; the part wins.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.engine.journal import JOURNAL_NAME, Journal

RESULTS_DIR = "results"
PART_ROWS = 50_000


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

    def __init__(self, out: Path, identity: dict, resume: bool, schema: pa.Schema, part_rows: int = PART_ROWS):
        self.folder, self.schema, self.part_rows = out / RESULTS_DIR, schema, part_rows
        if not resume:
            for part in self.parts():
                part.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.done = SeqRanges()
        for part in self.parts():
            for seq in pq.read_table(part, columns=["seq"]).column("seq").to_pylist():
                self.done.add(seq)
        self.journal = Journal(out / JOURNAL_NAME, identity, resume)
        self.buffer = [row for row in self.journal.rows if row["seq"] not in self.done]
        self.journal.rows = []  # the buffer holds them now
        for row in self.buffer:
            self.done.add(row["seq"])
        self.resumed = len(self.done)

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
        write_atomically(self.folder / f"part-{len(self.parts()):06d}.parquet", lambda p: pq.write_table(table, p))
        self.journal.restart()
        self.buffer = []

    def rows(self) -> list[dict]:
        """Every committed row in source order (call after close)."""
        rows = [row for batch in self.batches() for row in batch.to_pylist()]
        return sorted(rows, key=lambda r: r["seq"])

    def batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Every committed row, part by part (call after close)."""
        for part in self.parts():
            yield from pq.ParquetFile(part).iter_batches(columns=columns)
