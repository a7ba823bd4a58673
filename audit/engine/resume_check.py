"""What a resume finds in the output folder, read before anything there is changed.

`OUT/results/manifest.json` names the scan (its identity and columns) and every part it committed:
the file name, its rows, its first and last position and the sha256 of its bytes, recorded when the
part was written. `check_resume` holds the folder against it: a part whose bytes no longer match (or
that is not a regular file) is *altered*, a listed part that is gone is *missing*; both are scanned
again. A part the manifest does not list is refused by name (JournalMismatch: exit 2), except the one a
kill left between writing a part and recording it, whose rows the journal still holds. The journal
is read too (`read_journal`), so a resume with other settings is refused before any change.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from audit.atomic import open_in_place
from audit.engine.journal import JournalMismatch, Loaded, read_journal
from audit.side_files import SideFileError, read_json_object

MANIFEST_NAME = "manifest.json"
PART_NAME = re.compile(r"part-(\d{6,})\.parquet")
SHA256 = re.compile(r"[0-9a-f]{64}")
ANEW = "move it away, or start anew with --overwrite"


class ResumeRefused(JournalMismatch):
    """The output folder cannot be resumed as it stands; the message names the file."""


@dataclass
class ResumeCheck:
    manifest: dict
    loaded: Loaded | None  # the journal as it stands (None: there is none)
    intact: list[dict] = field(default_factory=list)  # manifest entries whose part matches its checksum
    missing: list[dict] = field(default_factory=list)
    altered: list[dict] = field(default_factory=list)
    in_flight: list[Path] = field(default_factory=list)  # unlisted parts whose rows the journal holds
    next_part: int = 0


def new_manifest(identity: dict, columns: list[str]) -> dict:
    return {"identity": identity, "columns": list(columns), "parts": []}


def part_entry(name: str, table, data: bytes) -> dict:
    """The manifest's record of a part: name, rows, first and last position, sha256 of its bytes."""
    seq = table.column("seq").to_pylist()
    return {
        "name": name,
        "rows": len(seq),
        "first": min(seq),
        "last": max(seq),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def check_resume(folder: Path, journal: Path, identity: dict, columns: list[str]) -> ResumeCheck:
    """See the module docstring; raises JournalMismatch (other settings) or ResumeRefused."""
    manifest_path = folder / MANIFEST_NAME
    on_disk = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if os.path.lexists(manifest_path):
        manifest = read_manifest(manifest_path, identity, columns)
    elif on_disk:
        raise ResumeRefused(f"{manifest_path} is missing, so the parts in {folder} cannot be checked; {ANEW}")
    else:
        manifest = new_manifest(identity, columns)
    check = ResumeCheck(manifest=manifest, loaded=read_journal(journal, identity))
    for entry in manifest["parts"]:
        state = _part_state(folder / entry["name"], entry["sha256"])
        {"intact": check.intact, "missing": check.missing, "altered": check.altered}[state].append(entry)
    listed = {entry["name"] for entry in manifest["parts"]}
    numbers = [int(PART_NAME.fullmatch(name).group(1)) for name in listed]
    check.next_part = max(numbers, default=-1) + 1
    journaled = {row["seq"] for row in check.loaded.rows} if check.loaded and check.loaded.verified else set()
    for path in on_disk:
        if path.name not in listed:
            if path.name != f"part-{check.next_part:06d}.parquet" or not _seqs(path) <= journaled or not journaled:
                raise ResumeRefused(
                    f"{path} is not one of the parts this scan committed (not in {MANIFEST_NAME}); " + ANEW
                )
            check.in_flight.append(path)
    check.next_part += len(check.in_flight)
    return check


def _part_state(path: Path, sha256: str) -> str:
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return "altered"
    except FileNotFoundError:
        return "missing"
    try:
        return "intact" if hashlib.sha256(_read(path)).hexdigest() == sha256 else "altered"
    except OSError:
        return "altered"


def _read(path: Path) -> bytes:
    with os.fdopen(open_in_place(path, os.O_RDONLY), "rb") as f:
        return f.read()


def _seqs(path: Path) -> set:
    """The positions an unlisted part holds (nothing when it is not a readable part)."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return {None}
        return set(pq.read_table(io.BytesIO(_read(path)), columns=["seq"]).column("seq").to_pylist())
    except Exception:  # noqa: BLE001 - anything unreadable is not the part a kill left
        return {None}


def read_manifest(path: Path, identity: dict, columns: list[str]) -> dict:
    """The manifest, its fields checked; raises JournalMismatch when it names other settings."""
    try:
        manifest = read_json_object(path)
    except SideFileError as e:
        raise ResumeRefused(f"{e}; {ANEW}") from None
    if manifest.get("identity") != identity:
        raise JournalMismatch(
            f"{path} was written by a scan with other settings; resume with the same source "
            "and options, or scan into another --out"
        )
    if manifest.get("columns") != list(columns):
        raise ResumeRefused(f"{path}: field 'columns' does not match this version's result columns; {ANEW}")
    parts = manifest.get("parts")
    if not isinstance(parts, list):
        raise ResumeRefused(f"{path}: field 'parts' must be a list; {ANEW}")
    names = set()
    for i, entry in enumerate(parts):
        problem = _entry_problem(entry)
        if problem or entry["name"] in names:
            raise ResumeRefused(f"{path}: field 'parts[{i}]' {problem or 'repeats a part'}; {ANEW}")
        names.add(entry["name"])
    return manifest


def _entry_problem(entry) -> str | None:
    if not isinstance(entry, dict):
        return "must be an object"
    if not isinstance(entry.get("name"), str) or not PART_NAME.fullmatch(entry["name"]):
        return "has no part name part-NNNNNN.parquet"
    if not isinstance(entry.get("sha256"), str) or not SHA256.fullmatch(entry["sha256"]):
        return "has no sha256 of 64 hex digits"
    counts = [entry.get(key) for key in ("rows", "first", "last")]
    if not all(type(value) is int and value >= 0 for value in counts) or counts[1] > counts[2]:
        return "needs whole numbers rows, first and last (first <= last)"
    return None
