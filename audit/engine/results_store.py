"""A scan's result rows on disk as they arrive, in memory no more than one part's worth.

Each finished batch is appended to the journal (written through at once, fsynced in groups: see
journal.py for what a kill and a machine crash can cost); every PART_ROWS rows the buffered rows
become a parquet part, OUT/results/part-NNNNNN.parquet, written atomically, and the journal starts
over. Each part is recorded in OUT/results/manifest.json with its rows, positions and the sha256 of
its bytes (resume_check.py), and only the parts it lists are read. The items a resumed scan has done
are the intact parts' `seq` values, kept as ranges (rows arrive nearly in order, so there are few),
plus the journal's verified rows; a part missing or altered since it was written is scanned again.
A kill between a part's write and the journal's restart leaves rows in both; the part wins.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.engine.journal import JOURNAL_NAME, Journal, Loaded, set_aside
from audit.engine.resume_check import MANIFEST_NAME, ResumeCheck, check_resume, new_manifest, part_entry

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
    """Where the engine puts rows: `append(rows)` per batch, `close()` at the end. `notes`: what a
    resume found and repaired (parts missing or altered, journal lines that failed their check)."""

    def __init__(self, out: Path, identity: dict, resume: bool, schema: pa.Schema, part_rows: int | None = None):
        self.folder, self.schema, self.part_rows = out / RESULTS_DIR, schema, part_rows or PART_ROWS
        self.notes: list[str] = []
        journal = out / JOURNAL_NAME
        check = check_resume(self.folder, journal, identity, schema.names) if resume else None  # changes nothing
        if check is None:
            self._start_afresh(identity)
            loaded = Loaded()
        else:
            loaded = self._repair(check)
        self.done = SeqRanges()
        for part in self.parts():
            for seq in pq.read_table(part, columns=["seq"]).column("seq").to_pylist():
                self.done.add(seq)
        self.journal = Journal(journal, identity, resume, schema.names, loaded=loaded)
        self.notes.extend(self.journal.notes)
        self.buffer = [row for row in self.journal.rows if row["seq"] not in self.done]
        self.journal.rows = []  # the buffer holds them now
        for row in self.buffer:
            self.done.add(row["seq"])
        self.resumed = len(self.done)

    def _start_afresh(self, identity: dict) -> None:
        if self.folder.is_dir():
            for old in [*self.folder.glob("part-*.parquet"), *self.folder.glob("part-*.rejected-*")]:
                old.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest = new_manifest(identity, self.schema.names)
        self.next_part = 0
        self._write_manifest()

    def _repair(self, check: ResumeCheck) -> Loaded:
        """Set aside what failed its check, drop it from the manifest (its images are scanned again),
        and return the journal's rows that may be used."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for entry in check.missing:
            self.notes.append(
                f"{RESULTS_DIR}/{entry['name']} ({_rows_at(entry)}) was missing; those images were scanned again"
            )
        for entry in check.altered:
            aside = set_aside(self.folder / entry["name"])
            self.notes.append(
                f"{RESULTS_DIR}/{entry['name']} ({_rows_at(entry)}) did not match the checksum "
                f"recorded when it was written; it was moved to {aside.name} and those images "
                "were scanned again"
            )
        for path in check.in_flight:  # written just before a kill; its rows are still in the journal
            path.unlink()
        self.manifest = {**check.manifest, "parts": check.intact}
        self.next_part = check.next_part
        if check.missing or check.altered or not (self.folder / MANIFEST_NAME).is_file():
            self._write_manifest()
        loaded = check.loaded or Loaded()
        if not loaded.verified and loaded.rows:
            self.notes.append(
                f"{JOURNAL_NAME} was written by an earlier version, without checksums; its "
                f"{len(loaded.rows)} rows were not used and their images were scanned again"
            )
            loaded.rows = []
        return loaded

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, ensure_ascii=False) + "\n"
        write_atomically(self.folder / MANIFEST_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def parts(self) -> list[Path]:
        """The committed parts, as the manifest lists them (a file it does not list is never read)."""
        return [self.folder / entry["name"] for entry in self.manifest["parts"]]

    def append(self, rows: list[dict], journal_cells: bytes | None = None) -> None:
        """`journal_cells`: the rows encoded for the journal already (Journal.append)."""
        self.journal.append(rows, journal_cells)
        self.buffer.extend(rows)
        if len(self.buffer) >= self.part_rows:
            self._flush()

    def close(self) -> None:
        self._flush()
        self.journal.close()

    def _flush(self) -> None:
        """The buffer becomes the next part: written atomically, recorded with its checksum in the
        manifest, then the journal starts over (a kill between any two steps loses nothing)."""
        if not self.buffer:
            return
        table = pa.Table.from_pylist(sorted(self.buffer, key=lambda r: r["seq"]), schema=self.schema)
        name, written = f"part-{self.next_part:06d}.parquet", []

        def write(tmp: Path) -> None:
            pq.write_table(table, tmp)
            written.append(tmp.read_bytes())  # what the checksum covers: the bytes put in place

        write_atomically(self.folder / name, write)
        self.manifest["parts"].append(part_entry(name, table, written[0]))
        self._write_manifest()
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


def _rows_at(entry: dict) -> str:
    return f"{entry['rows']} rows, positions {entry['first']} to {entry['last']}"
