"""The one reader of the JSON files beside a scan's source: a baseline's summary.json, a calibration,
a probe's probe.json, a bank's info.json, the input of `--from-scan`, an output folder's manifest.

Only a regular file is read, opened without blocking (a FIFO or a device is refused at once, never
waited on), at most MAX_BYTES of it, as UTF-8 JSON nested at most MAX_DEPTH deep, strict (no NaN
or Infinity) unless the caller checks every number it reads by name. Every problem is one SideFileError naming the file; the callers check the fields.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_BYTES = 64 * 1024 * 1024  # far above any summary, calibration or manifest the tool writes
MAX_DEPTH = 64  # the tool's own files nest at most a handful of levels
READ_CHUNK = 1024 * 1024


class SideFileError(ValueError):
    """A file beside the source that cannot be used; the message names the file (and the field)."""


def read_regular_file(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The bytes of `path`, a regular file of at most `max_bytes` (MAX_BYTES; links followed)."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise SideFileError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SideFileError(f"{path} is not a regular file ({_kind(mode)}); give a file")
        return _read_at_most(fd, path, max_bytes)
    finally:
        os.close(fd)


def _read_at_most(fd: int, path, max_bytes: int) -> bytes:
    chunks, held = [], 0
    while True:
        try:
            chunk = os.read(fd, min(READ_CHUNK, max_bytes + 1 - held))
        except OSError as e:
            raise SideFileError(f"cannot read {path}: {e.strerror or e}") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        held += len(chunk)
        if held > max_bytes:  # also a file that grows while it is read
            raise SideFileError(f"{path} is larger than {max_bytes:,} bytes; not a file the tool wrote")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def read_json(path: str | Path, max_bytes: int | None = None, max_depth: int = MAX_DEPTH, strict: bool = True):
    """The JSON value in `path` (see the module docstring for the limits). `strict=False` reads NaN
    and Infinity as floats, for callers whose field checks refuse them by name."""
    raw = read_regular_file(path, max_bytes)
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant if strict else None)
    except UnicodeDecodeError as e:
        raise SideFileError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise SideFileError(f"{path} is nested deeper than {max_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, and the constants refused below
        raise SideFileError(f"{path} is not valid JSON ({e})") from None
    if _depth_over(value, max_depth):
        raise SideFileError(f"{path} is nested deeper than {max_depth} levels")
    return value


def read_json_object(path: str | Path, max_bytes: int | None = None, strict: bool = True) -> dict:
    """`read_json` for files that must hold one JSON object."""
    value = read_json(path, max_bytes, strict=strict)
    if not isinstance(value, dict):
        raise SideFileError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _depth_over(value, limit: int) -> bool:
    """Whether lists and objects nest deeper than `limit` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False
