"""The scan's output folder: one scan at a time (an exclusive lock), and no result files of an
earlier scan left looking current while a new one runs (they are removed when it starts)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from audit.atomic import open_in_place
from audit.engine.journal import JOURNAL_NAME
from audit.engine.results_store import RESULTS_DIR
from audit.engine.resume_check import MANIFEST_NAME

LOCK_NAME = ".audit.lock"
PARTS_DIR = "parts"  # the Ray engine's committed shards
RESULT_FILES = ("results.parquet", "summary.json", "report.md", "report.html")


class OutFolderBusy(Exception):
    """Another scan is writing into the same output folder."""


class OutFolderError(Exception):
    """The output folder holds another scan (and neither resume nor overwrite was asked for), or a
    resume was asked for where there is nothing to resume."""


def check_out_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to overwrite an earlier scan's outputs by accident, and to "resume" nothing."""
    held = [name for name in (JOURNAL_NAME, PARTS_DIR, *RESULT_FILES) if os.path.lexists(out / name)]
    manifest = os.path.lexists(out / RESULTS_DIR / MANIFEST_NAME)
    if resume and JOURNAL_NAME not in held and PARTS_DIR not in held and not manifest:
        raise OutFolderError(
            f"nothing to resume in {out}: it holds no scan journal or committed parts; scan without --resume"
        )
    if held and not resume and not overwrite:
        raise OutFolderError(
            f"{out} holds another scan ({', '.join(held)}); continue it with --resume, "
            "replace it with --overwrite, or choose another --out"
        )


class OutFolder:
    """A context that holds the lock of `out` (the lock also ends with the process). With `clear`,
    the earlier scan's result files are removed at once; else by `clear_results()`, which an engine
    calls once a resume has been found possible (a refused resume changes nothing on disk)."""

    def __init__(self, out: Path, clear: bool = True):
        self.out = out
        import fcntl

        out.mkdir(parents=True, exist_ok=True)
        self._file = os.fdopen(open_in_place(out / LOCK_NAME, os.O_RDWR | os.O_CREAT), "r+")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise OutFolderBusy(f"another scan is writing into {out}; wait for it or choose another --out") from None
        if clear:
            self.clear_results()

    def clear_results(self) -> None:
        for name in RESULT_FILES:  # a crash from here on must not leave old results looking current
            (self.out / name).unlink(missing_ok=True)

    def __enter__(self) -> OutFolder:
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def clear_folder(folder: Path) -> None:
    """Remove `folder` and what it holds (--overwrite and the output folder's embedding cache); a link
    or file in its place is removed itself, never followed."""
    try:
        mode = folder.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(folder)
    else:
        folder.unlink()
