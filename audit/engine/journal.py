"""Append-only JSONL journal of result rows, so an interrupted scan resumes without loss.

The first line records the scan's identity (source and settings that change results) and the row
columns; each finished batch follows as one line, `{"sha": ..., "cols": [count, same, cells]}`: the
batch column by column (a column whose rows all hold the same string or null is written once: its
position is in `same` and its cell is that value; any other cell lists the rows' values), and a
checksum chained from the header through every line before it, so a line edited, removed, moved or
added by hand no longer matches. Column-wise, a batch of small images is a third of the bytes to
encode, hash and write; the local engine's worker processes encode their batches themselves
(`encode_cells`), so the main process only chains the checksum and writes. Lines of
`{"sha": ..., "rows": [...]}` (each row's values in column order, written before) are read alike;
older journals, without checksums, hold one JSON object or array per line; their rows are read but
marked unverified. A resume with different settings is refused. Reading a journal (`read_journal`) changes nothing on disk; what
fails its check is set aside (renamed `NAME.rejected-N`) only once the resume goes ahead.

Each batch is written to the file at once, one write to the operating system, which keeps it when
the process dies; the file is fsynced in groups: once SYNC_SECONDS have passed since the last
fsync, and when the journal starts over or closes. So a killed scan (kill -9, an out-of-memory
kill, Ctrl-C) loses no finished batch, and a crash of the machine itself (power, kernel) loses at
most the batches of the last SYNC_SECONDS, which a resume scans again with identical results. A
kill can leave at most one partial last line; a Journal opened with resume=True drops it and holds
the rows already done.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
import time
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from pathlib import Path

from audit.atomic import open_in_place, write_atomically

JOURNAL_NAME = "results.journal.jsonl"
SYNC_SECONDS = 1.0  # the most rows (in seconds of scanning) a machine crash can take from the journal


class JournalMismatch(Exception):
    """--resume was asked for a journal written by a scan with other settings."""


@dataclass
class Loaded:
    """What a journal on disk holds, read without changing anything (`read_journal`)."""

    rows: list[dict] = field(default_factory=list)
    columns: list[str] | None = None
    verified: bool = True  # every row kept is covered by a checksum (an older journal's are not)
    rejected_line: int | None = None  # the first line, counted from 1, that failed its checksum
    not_regular: str | None = None  # what stands at the journal's name when it is not a regular file


class Journal:
    """`rows`: what a resumed journal held when opened; appended rows are written, not kept.
    `notes`: what was set aside when it was opened (a line that failed its checksum, a FIFO...)."""

    def __init__(
        self,
        path: Path,
        identity: dict,
        resume: bool,
        columns: list[str],
        sync_seconds: float | None = None,
        loaded: Loaded | None = None,
    ):
        """`columns`: the row keys journaled, in order (a row's other keys are not kept). `loaded`:
        the journal as `read_journal` found it (read here when resuming without it)."""
        self.path, self.identity, self.columns = path, identity, list(columns)
        self.sync_seconds = SYNC_SECONDS if sync_seconds is None else sync_seconds
        self.notes: list[str] = []
        self._encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False).encode
        if resume and loaded is None:
            loaded = read_journal(path, identity)
        loaded = loaded or Loaded()
        self.rows, self.verified = loaded.rows, loaded.verified
        self._set_aside(loaded)
        # the identity is on disk before any row, so a kill at any time leaves a resumable journal; rows
        # kept from a resumed journal are written anew as one checked line
        write_atomically(path, self._write_fresh)
        self._file = os.fdopen(open_in_place(path, os.O_WRONLY | os.O_APPEND), "ab", buffering=0)  # unbuffered
        self._synced_at = time.monotonic()

    def _set_aside(self, loaded: Loaded) -> None:
        """Keep what failed its check beside the journal, under a name no scan reads, and say so."""
        if loaded.not_regular:
            aside = set_aside(self.path)
            self.notes.append(
                f"{self.path.name} was {loaded.not_regular}, not a journal; it was moved to "
                f"{aside.name} and the scan continued from the committed parts"
            )
        elif loaded.rejected_line:
            aside = set_aside(self.path)
            self.notes.append(
                f"{self.path.name} line {loaded.rejected_line} does not match its checksum (edited or "
                f"damaged); that line and those after it were not used (the file is kept as "
                f"{aside.name}) and their images were scanned again"
            )

    def _write_fresh(self, path: Path) -> None:
        """The header, then the rows held, into a new file at `path`."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self._header() + (self._line(self.rows).decode("utf-8") if self.rows else ""))

    def _header(self) -> str:
        header = self._encode({"journal": self.identity, "columns": self.columns, "chain": CHAIN}) + "\n"
        self._digest = _digest("", header)
        return header

    def _line(self, rows: list[dict], cells: bytes | None = None) -> bytes:
        """A batch as one line: its columns (`encode_cells`; `cells` when they were encoded already),
        with its checksum, chained to the line before it (so a line edited, removed or moved no
        longer matches)."""
        payload = encode_cells(rows, self.columns) if cells is None else cells
        self._digest = _digest_bytes(self._digest, payload)
        return b"".join((LINE_START_BYTES, self._digest.encode(), COLS_MIDDLE_BYTES, payload, b"}\n"))

    def append(self, rows: list[dict], cells: bytes | None = None) -> None:
        """Write the batch through to the operating system now; fsync once SYNC_SECONDS have passed.
        `cells`: `encode_cells(rows, columns)`, when a worker process encoded them already."""
        if rows:
            self._write(self._line(rows, cells))
        if time.monotonic() - self._synced_at >= self.sync_seconds:
            self._sync()

    def restart(self) -> None:
        """Empty the journal down to its identity line (its rows are safe elsewhere now)."""
        self._file.seek(0)
        self._file.truncate()
        self._write(self._header().encode("utf-8"))
        self._sync()

    def _write(self, data: bytes) -> None:
        fd = self._file.fileno()
        written = os.write(fd, data)
        if written < len(data):  # a write may take less than all
            data = memoryview(data)[written:]
            while data:
                data = data[os.write(fd, data) :]

    def _sync(self) -> None:
        os.fsync(self._file.fileno())
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self._sync()
        self._file.close()


# --- reading a journal, without changing it --------------------------------------------------------

CHAIN = "sha256-128"  # the header names how its lines are checked
LINE_START, LINE_MIDDLE, COLS_MIDDLE = '{"sha":"', '","rows":', '","cols":'
DIGEST_CHARS = 32


LINE_START_BYTES, COLS_MIDDLE_BYTES = LINE_START.encode(), COLS_MIDDLE.encode()


def encode_cells(rows: list[dict], columns: list[str]) -> bytes:
    """A batch's `cols` payload, UTF-8: [count, same, cells], column by column (see the module). A
    pure function of the rows, so a worker process can encode its batch before sending it."""
    getter = _getter(tuple(columns))
    try:
        values = [getter(row) for row in rows]
    except KeyError:  # a row without some column: null there, as in results.parquet
        values = [[row.get(c) for c in columns] for row in rows]
    cells = list(zip(*values)) if len(columns) > 1 else [tuple(v[0] for v in values)]
    count = len(rows)
    same = [j for j, cell in enumerate(cells) if (cell[0] is None or type(cell[0]) is str) and _same(cell, count)]
    for j in same:
        cells[j] = cells[j][0]
    return "".join(_ENCODE_CELLS([count, same, cells], 0)).encode("utf-8")


@cache
def _getter(columns: tuple[str, ...]):
    return itemgetter(*columns) if len(columns) > 1 else lambda row: [row[columns[0]]]


def _cell_encoder():
    """The JSON encoder of a batch's cells, made once: json.dumps's C encoder, same output."""
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the pure-Python encoder, same output
        return lambda value, _level: [encoder.encode(value)]
    return make(None, encoder.default, json.encoder.encode_basestring, None, ": ", ", ", False, False, False)


_ENCODE_CELLS = _cell_encoder()


def _same(cell: tuple, count: int) -> bool:
    """Whether all `count` rows hold the value of the first; asked only of a string or null (a number
    or flag is always listed: 1 == 1.0 == True and 0.0 == -0.0, which JSON tells apart)."""
    return cell.count(cell[0]) == count


def _digest(before: str, text: str) -> str:
    return _digest_bytes(before, text.encode())


def _digest_bytes(before: str, data: bytes) -> str:
    """The checksum of a line whose payload is `data` (UTF-8), chained to the digest `before` it."""
    digest = hashlib.sha256(f"{before}\n".encode())
    digest.update(data)
    return digest.hexdigest()[:DIGEST_CHARS]


def read_journal(path: Path, identity: dict) -> Loaded | None:
    """The journal at `path` as it stands: None when there is none (or it is empty); raises
    JournalMismatch when it was written by a scan with other settings. Changes nothing on disk: a
    partial last line (a kill inside a write) and the lines from the first that fails its checksum
    on are left out of the rows."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode):
        return Loaded(not_regular=_kind(mode))
    raw = _read(path)
    if not raw:
        return None
    lines = raw[: raw.rfind(b"\n") + 1].split(b"\n")[:-1]  # a partial last line is dropped
    if not lines:
        raise JournalMismatch(f"{path} holds no complete line; start the scan without --resume")
    first = _header_of(path, lines[0])
    header = first.get("journal") or {}
    if header != identity:
        differ = sorted(k for k in {*header, *identity} if header.get(k) != identity.get(k))
        raise JournalMismatch(
            f"{path} was written by a scan with other settings: "
            + "; ".join(f"{k}: {header.get(k)!r} then, {identity.get(k)!r} now" for k in differ)
            + ". Resume with the same source and options, or scan into another --out"
        )
    columns = first.get("columns") if isinstance(first.get("columns"), list) else None
    if first.get("chain") == CHAIN and columns:
        return _chained_rows(lines, columns)
    return _older_rows(lines[1:], columns or [])


def _read(path: Path) -> bytes:
    fd = open_in_place(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _kind(mode: int) -> str:
    return (
        "a link"
        if stat.S_ISLNK(mode)
        else "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "not a plain file"
    )


def _header_of(path: Path, line: bytes) -> dict:
    try:
        first = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        first = None
    if not isinstance(first, dict) or not isinstance(first.get("journal"), dict):
        raise JournalMismatch(
            f"{path}: its first line is not a journal header; scan into another --out, or start anew with --overwrite"
        )
    return first


def _chained_rows(lines: list[bytes], columns: list[str]) -> Loaded:
    """The rows of the lines that match their checksums, up to the first that does not."""
    loaded = Loaded(columns=columns)
    digest = _digest("", lines[0].decode("utf-8") + "\n")
    for number, line in enumerate(lines[1:], start=2):
        batch, digest = _checked_batch(line, digest, columns)
        if batch is None:
            loaded.rejected_line = number
            break
        loaded.rows.extend(batch)
    return loaded


def _checked_batch(line: bytes, digest: str, columns: list[str]) -> tuple[list[dict] | None, str]:
    """(the batch's rows, the line's digest), or (None, digest) for a line that fails its check."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, digest
    start, end = len(LINE_START), len(LINE_START) + DIGEST_CHARS
    middle = text[end : end + len(COLS_MIDDLE)]
    payload = text[end + len(COLS_MIDDLE) : -1]  # both middles are as long
    if not (text.startswith(LINE_START) and middle in (LINE_MIDDLE, COLS_MIDDLE) and text.endswith("}")) or text[
        start:end
    ] != _digest(digest, payload):
        return None, digest
    try:
        values = json.loads(payload)
    except (ValueError, RecursionError):
        return None, digest
    if middle == COLS_MIDDLE:
        values = _cells_values(values, len(columns))
    rows = _batch_rows(values, columns)
    return (rows, text[start:end]) if rows is not None else (None, digest)


def _cells_values(cells, width: int) -> list[list] | None:
    """A `cols` line's [count, same, cells] as each row's values in column order, or None when it is
    not one."""
    if not (isinstance(cells, list) and len(cells) == 3 and type(cells[0]) is int and cells[0] >= 0):
        return None
    count, same, cells = cells
    if not (isinstance(same, list) and isinstance(cells, list) and len(cells) == width):
        return None
    if not all(type(j) is int and 0 <= j < width for j in same):
        return None
    listed = set(range(width)) - set(same)
    if not all(isinstance(cells[j], list) and len(cells[j]) == count for j in listed):
        return None
    columns = [cells[j] if j in listed else [cells[j]] * count for j in range(width)]
    return [list(row) for row in zip(*columns)]


def _batch_rows(values, columns: list[str]) -> list[dict] | None:
    """A line's values as rows, when it is a list of rows of the journal's columns with whole positions."""
    if not isinstance(values, list) or not all(isinstance(v, list) and len(v) == len(columns) for v in values):
        return None
    rows = [dict(zip(columns, v)) for v in values]
    if not all(type(row.get("seq")) is int and row["seq"] >= 0 for row in rows):
        return None
    return rows


def _older_rows(lines: list[bytes], columns: list[str]) -> Loaded:
    """An older journal's rows (batches of values, or one object per row), without checksums."""
    loaded = Loaded(columns=columns or None, verified=False)
    for number, line in enumerate(lines, start=2):
        try:
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            loaded.rejected_line = number
            break
        if isinstance(value, dict):
            loaded.rows.append(value)
        else:
            loaded.rows.extend(dict(zip(columns, values)) for values in value)
    return loaded


def set_aside(path: Path) -> Path:
    """Rename `path` to a free `NAME.rejected-N` beside it (never read by a scan); its new path."""
    for n in itertools.count(1):
        aside = path.with_name(f"{path.name}.rejected-{n}")
        if not os.path.lexists(aside):
            os.rename(path, aside)
            return aside
    raise AssertionError("unreachable")
