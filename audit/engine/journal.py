"""Append-only JSONL journal of result rows, so an interrupted scan resumes without loss.

Each finished batch is appended and flushed at once. A kill -9 can leave at most one
partial last line; `open_journal(resume=True)` drops it and returns the rows already done.
The first line records the scan's identity (source and settings that change results), and a
resume with different settings is refused.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

JOURNAL_NAME = "results.journal.jsonl"


class JournalMismatch(Exception):
    """--resume was asked for a journal written by a scan with other settings."""


class Journal:
    """`rows`: what a resumed journal held when opened; appended rows are written, not kept."""

    def __init__(self, path: Path, identity: dict, resume: bool):
        self.path, self.identity = path, identity
        self.rows: list[dict] = []
        if resume and path.exists() and path.stat().st_size > 0:
            self.rows = self._load(identity)
            self._file = open(path, "a", encoding="utf-8")
        else:  # the identity is on disk before any row, so a kill at any time leaves a resumable journal
            self._file = open(path, "w", encoding="utf-8")
            self._write_line({"journal": identity})
            self._sync()

    def _load(self, identity: dict) -> list[dict]:
        raw = self.path.read_bytes()
        good_end = raw.rfind(b"\n") + 1  # a partial last line is dropped
        if good_end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
        lines = raw[:good_end].decode("utf-8").splitlines()
        if not lines:
            raise JournalMismatch(f"{self.path} holds no complete line; start the scan without --resume")
        header = json.loads(lines[0]).get("journal") or {}
        if header != identity:
            differ = sorted(k for k in {*header, *identity} if header.get(k) != identity.get(k))
            raise JournalMismatch(
                f"{self.path} was written by a scan with other settings: "
                + "; ".join(f"{k}: {header.get(k)!r} then, {identity.get(k)!r} now" for k in differ)
                + ". Resume with the same source and options, or scan into another --out"
            )
        return [json.loads(line) for line in lines[1:]]

    def _write_line(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")

    def append(self, rows: list[dict]) -> None:
        for row in rows:
            self._write_line(row)
        self._sync()

    def restart(self) -> None:
        """Empty the journal down to its identity line (its rows are safe elsewhere now)."""
        self._file.seek(0)
        self._file.truncate()
        self._write_line({"journal": self.identity})
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
