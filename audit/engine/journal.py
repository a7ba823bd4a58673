"""Append-only JSONL journal of result rows, so an interrupted scan resumes without loss.

The first line records the scan's identity (source and settings that change results) and the row
columns; each finished batch follows as one line, a JSON array of its rows' values in that column
order (older journals hold one JSON object per row; both are read). A resume with different
settings is refused.

Each batch is written to the file at once, one write to the operating system, which keeps it when
the process dies; the file is fsynced in groups: once SYNC_SECONDS have passed since the last
fsync, and when the journal starts over or closes. So a killed scan (kill -9, an out-of-memory
kill, Ctrl-C) loses no finished batch, and a crash of the machine itself (power, kernel) loses at
most the batches of the last SYNC_SECONDS, which a resume scans again with identical results. A
kill can leave at most one partial last line; a Journal opened with resume=True drops it and holds
the rows already done.
"""
from __future__ import annotations

import json
import os
import time
from operator import itemgetter
from pathlib import Path

from audit.atomic import open_in_place, write_atomically

JOURNAL_NAME = "results.journal.jsonl"
SYNC_SECONDS = 1.0  # the most rows (in seconds of scanning) a machine crash can take from the journal


class JournalMismatch(Exception):
    """--resume was asked for a journal written by a scan with other settings."""


class Journal:
    """`rows`: what a resumed journal held when opened; appended rows are written, not kept."""

    def __init__(self, path: Path, identity: dict, resume: bool, columns: list[str],
                 sync_seconds: float | None = None):
        """`columns`: the row keys journaled, in order (a row's other keys are not kept)."""
        self.path, self.identity, self.columns = path, identity, list(columns)
        self.sync_seconds = SYNC_SECONDS if sync_seconds is None else sync_seconds
        self.rows: list[dict] = []
        self._encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False).encode
        self._values = itemgetter(*self.columns) if len(self.columns) > 1 else lambda row: [row.get(c) for c in columns]
        if resume and path.exists() and path.stat().st_size > 0:
            self.rows, written_columns = self._load(identity)
            if written_columns != self.columns:  # an older format: written anew in this one
                write_atomically(path, self._write_fresh)
        else:  # the identity is on disk before any row, so a kill at any time leaves a resumable journal
            write_atomically(path, self._write_fresh)
        self._file = os.fdopen(open_in_place(path, os.O_WRONLY | os.O_APPEND), "ab", buffering=0)  # unbuffered
        self._synced_at = time.monotonic()

    def _write_fresh(self, path: Path) -> None:
        """The header, then the rows held, into a new file at `path`."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self._header() + (self._line(self.rows) if self.rows else ""))

    def _load(self, identity: dict) -> tuple[list[dict], list[str] | None]:
        """(the rows, the columns its header names)."""
        raw = self.path.read_bytes()
        good_end = raw.rfind(b"\n") + 1  # a partial last line is dropped
        if good_end < len(raw):
            with os.fdopen(open_in_place(self.path, os.O_RDWR), "r+b") as f:
                f.truncate(good_end)
        lines = raw[:good_end].decode("utf-8").splitlines()
        if not lines:
            raise JournalMismatch(f"{self.path} holds no complete line; start the scan without --resume")
        first = json.loads(lines[0])
        header = first.get("journal") or {}
        if header != identity:
            differ = sorted(k for k in {*header, *identity} if header.get(k) != identity.get(k))
            raise JournalMismatch(
                f"{self.path} was written by a scan with other settings: "
                + "; ".join(f"{k}: {header.get(k)!r} then, {identity.get(k)!r} now" for k in differ)
                + ". Resume with the same source and options, or scan into another --out"
            )
        return _rows(lines[1:], first.get("columns") or []), first.get("columns")

    def _header(self) -> str:
        return self._encode({"journal": self.identity, "columns": self.columns}) + "\n"

    def _line(self, rows: list[dict]) -> str:
        """A batch as one line: its rows' values in column order."""
        try:
            values = [self._values(row) for row in rows]
        except KeyError:  # a row without some column: null there, as in results.parquet
            values = [[row.get(c) for c in self.columns] for row in rows]
        return self._encode(values) + "\n"

    def append(self, rows: list[dict]) -> None:
        """Write the batch through to the operating system now; fsync once SYNC_SECONDS have passed."""
        if rows:
            self._write(self._line(rows))
        if time.monotonic() - self._synced_at >= self.sync_seconds:
            self._sync()

    def restart(self) -> None:
        """Empty the journal down to its identity line (its rows are safe elsewhere now)."""
        self._file.seek(0)
        self._file.truncate()
        self._write(self._header())
        self._sync()

    def _write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:  # an unbuffered write may take less than all
            data = data[self._file.write(data):]

    def _sync(self) -> None:
        os.fsync(self._file.fileno())
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self._sync()
        self._file.close()


def _rows(lines: list[str], columns: list[str]) -> list[dict]:
    """The rows of the journal's lines after the header: batches of values, or one object per row."""
    rows: list[dict] = []
    for line in lines:
        loaded = json.loads(line)
        if isinstance(loaded, dict):
            rows.append(loaded)
        else:
            rows.extend(dict(zip(columns, values)) for values in loaded)
    return rows
