"""Embedding cache keyed by content hash + embedder spec + preprocessing.

A folder of `.npz` parts, one per flush (every FLUSH_EVERY new vectors and at close), each holding `sha256` keys and raw float32 vectors;
loaded whole at start (an embedding is a few KB, so 10^6 images fit in a few GB). A re-scan,
a resume or a calibration after a scan reuses what is there instead of embedding again.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically

FLUSH_EVERY = 2048


class EmbeddingCache:
    def __init__(self, root: str | Path, embedder_spec: str, preprocess: str):
        key = hashlib.sha256(f"{embedder_spec}|{preprocess}".encode()).hexdigest()[:16]
        self.folder = Path(root) / key
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "SPEC.txt").write_text(f"embedder={embedder_spec}\npreprocess={preprocess}\n")
        self._vectors: dict[str, np.ndarray] = {}
        self._pending: list[str] = []
        for part in sorted(self.folder.glob("part-*.npz")):
            self._load(part)

    def _load(self, part: Path) -> None:
        try:
            with np.load(part, allow_pickle=False) as data:
                self._vectors.update(zip(data["sha256"].tolist(), data["vectors"]))
        except (OSError, ValueError, KeyError):
            part.unlink(missing_ok=True)  # a part cut short by a crash: its images are embedded again

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, sha256: str) -> np.ndarray | None:
        return self._vectors.get(sha256)

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        for key, vector in zip(keys, vectors):
            if key not in self._vectors:
                self._vectors[key] = np.asarray(vector, dtype=np.float32)
                self._pending.append(key)
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Persist the vectors added since the last flush as one part (written atomically)."""
        if not self._pending:
            return
        part = self.folder / f"part-{len(list(self.folder.glob('part-*.npz'))):06d}-{os.getpid()}.npz"
        vectors = np.stack([self._vectors[k] for k in self._pending])
        write_atomically(part, lambda tmp: np.savez(tmp, sha256=np.array(self._pending), vectors=vectors))
        self._pending = []
