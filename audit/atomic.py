"""Write a file atomically: through a temporary file beside it, flushed to disk, then renamed over it.

A crash leaves either the old file or the new one, never half of one. The temporary name keeps
the target's suffix (np.savez appends `.npz` otherwise) and starts with a dot, so globs such as
`part-*.npz` never see it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` to fill a temporary file, then put it in place of `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
