"""Embedding cache keyed by content hash + encoder + preprocessing.

One SQLite file per encoder (its spec, or for an ONNX encoder its file's sha256, so another file
at the same path never reuses these vectors) and preprocessing (`vectors.sqlite`: sha256 -> raw float32 vector),
written every FLUSH_EVERY new vectors and at close in one transaction, so a crash loses at most the
vectors since the last flush and never leaves a torn entry. Vectors are read back one by one when
asked for: memory holds the unflushed vectors and SQLite's page cache, not the dataset (a 512-d
vector is 2 KB: 10⁷ images are 20 GB on disk). A re-scan, a resume or a calibration after a scan
reuses what is there instead of embedding again. Caches written as `part-*.npz` files by earlier
versions are moved into the database when opened.
"""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically
from audit.embedding.backends import encoder_id

FLUSH_EVERY = 2048
DATABASE = "vectors.sqlite"


class EmbeddingCache:
    def __init__(self, root: str | Path, embedder_spec: str, preprocess: str):
        key = hashlib.sha256(f"{encoder_id(embedder_spec)}|{preprocess}".encode()).hexdigest()[:16]
        self.folder = Path(root) / key
        self.folder.mkdir(parents=True, exist_ok=True)
        spec = f"embedder={embedder_spec}\npreprocess={preprocess}\n"
        write_atomically(self.folder / "SPEC.txt", lambda p: p.write_text(spec))
        self._db = sqlite3.connect(self.folder / DATABASE, check_same_thread=False)  # the stage may prefetch in a thread
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (sha256 TEXT PRIMARY KEY, vector BLOB NOT NULL) "
                         "WITHOUT ROWID")
        self._pending: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("part-*.npz")):
            self._move_old_part(part)

    def _move_old_part(self, part: Path) -> None:
        try:
            with np.load(part, allow_pickle=False) as data:
                self.put(data["sha256"].tolist(), data["vectors"])
            self.flush()
        except (OSError, ValueError, KeyError):
            pass  # a part cut short by a crash: its images are embedded again
        part.unlink(missing_ok=True)

    def __len__(self) -> int:
        stored = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        return stored + sum(1 for key in self._pending if not self._stored(key))

    def _stored(self, sha256: str) -> bytes | None:
        found = self._db.execute("SELECT vector FROM vectors WHERE sha256 = ?", (sha256,)).fetchone()
        return found[0] if found else None

    def get(self, sha256: str) -> np.ndarray | None:
        if sha256 in self._pending:
            return self._pending[sha256]
        stored = self._stored(sha256)
        return None if stored is None else np.frombuffer(stored, dtype=np.float32).copy()

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        for key, vector in zip(keys, vectors):
            self._pending.setdefault(key, np.asarray(vector, dtype=np.float32))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Persist the vectors added since the last flush, in one transaction (a vector already stored stays)."""
        if not self._pending:
            return
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)",
                                 ((key, vector.tobytes()) for key, vector in self._pending.items()))
        self._pending = {}
