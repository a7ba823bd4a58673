"""Write a file atomically and safely: filled under an unpredictable name in a private folder beside
it, flushed to disk, then renamed over it.

A crash leaves either the old file or the new one, never half of one. The temporary folder is made
exclusively with a random name (`tempfile.mkdtemp`, mode 0700) in the target's folder, so nobody
can plant a link where the writer opens its file, and the file in it is itself created with
O_CREAT|O_EXCL|O_NOFOLLOW before the writer fills it. The rename replaces a link at the target
itself, never the file it points to. The temporary file keeps the target's name (np.savez appends
`.npz` otherwise) and its folder starts with a dot, so globs such as `part-*.npz` never see it.
Every file the tool writes goes through `write_atomically` (tests/test_write_safety.py checks).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` to fill a temporary file, then put it in place of `path`."""
    path = Path(path)
    private = Path(tempfile.mkdtemp(prefix=f".{path.stem}.tmp-", dir=path.parent))
    tmp = private / path.name
    try:
        create_exclusively(tmp)
        write(tmp)
        _sync_regular_file(tmp)
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def create_exclusively(path: Path) -> None:
    """Create an empty file at `path`; fails if anything, a link included, is already there."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_BINARY", 0), 0o666))


def _sync_regular_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} was replaced while it was written; not put in place")
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (where the system allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_in_place(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """A descriptor of the regular file at `path` opened with `flags` (os.O_*), for the few files
    written in place (a lock, an append-only journal): never through a link, never a FIFO or device."""
    fd = os.open(path, flags | NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0), mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{Path(path).name} is not a regular file; not written")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
