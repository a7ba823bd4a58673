"""A folder of finished network fits, so runs that train the same network on the same items train it once.

Every configuration of a study starts from a generation 0 trained on real images alone: with one seed
and one training setting that fit is the same in all of them (the diffusion backend stores only
these first fits, one file per seed and setting). The key is the SHA-256 of everything a
fit depends on (the training seed, the items, labels and weights used, the training settings, the
device); the value is the fitted parameters as safetensors. Training is deterministic given these on
CPU, so a hit returns the parameters the fit would have produced. A lock per key makes a second
process wait for the first one's fit instead of repeating it. Files are written atomically, so an
interrupted fit leaves no entry, and an entry that cannot be read is trained again and replaced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from audit.atomic import write_atomically


class FitCache:
    def __init__(self, folder):
        self.folder = Path(folder)

    @staticmethod
    def key(*parts) -> str:
        """The SHA-256 of arrays (dtype, shape and bytes) and anything else by its repr."""
        digest = hashlib.sha256()
        for part in parts:
            if isinstance(part, np.ndarray):
                array = np.ascontiguousarray(part)
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(array.tobytes())
            else:
                digest.update(repr(part).encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def fit(self, key: str, train: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The parameters stored under `key`, or `train()`'s, stored first."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{key}.safetensors"
        with FileLock(str(path) + ".lock"):
            stored = _readable(path)
            if stored is not None:
                return stored
            state = {name: np.ascontiguousarray(value) for name, value in train().items()}
            write_atomically(path, lambda p: save_file(state, str(p)))
            return state


def _readable(path: Path) -> dict[str, np.ndarray] | None:
    """The stored parameters, or None when there are none or the file cannot be read (it is then
    replaced by a new fit: an entry is only ever a copy of what training gives)."""
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except (OSError, SafetensorError):
        return None
