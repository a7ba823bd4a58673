"""The scan's output folder: one scan at a time (an exclusive lock), and no result files of an
earlier scan left looking current while a new one runs (they are removed when it starts)."""
from __future__ import annotations

from pathlib import Path

LOCK_NAME = ".audit.lock"
RESULT_FILES = ("results.parquet", "summary.json", "report.md", "report.html")


class OutFolderBusy(Exception):
    """Another scan is writing into the same output folder."""


class OutFolder:
    """A context that holds the lock of `out` (the lock also ends with the process)."""

    def __init__(self, out: Path):
        import fcntl

        out.mkdir(parents=True, exist_ok=True)
        self._file = open(out / LOCK_NAME, "a+")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise OutFolderBusy(f"another scan is writing into {out}; wait for it or choose another --out") from None
        for name in RESULT_FILES:  # a crash from here on must not leave old results looking current
            (out / name).unlink(missing_ok=True)

    def __enter__(self) -> "OutFolder":
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()
