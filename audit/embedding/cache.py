"""Embedding cache keyed by content hash + encoder + preprocessing.

One SQLite file per encoder (its spec, or for an ONNX encoder its file's sha256, so another file
at the same path never reuses these vectors) and preprocessing (`vectors.sqlite`: sha256 -> raw float32
vector and a checksum of both), written every FLUSH_EVERY new vectors and at close in one transaction,
so a crash loses at most the vectors since the last flush and never leaves a torn entry. Vectors are
read back one by one when asked for: memory holds the unflushed vectors and SQLite's page cache, not
the dataset (a 512-d vector is 2 KB: 10⁷ images are 20 GB on disk). A re-scan, a resume or a
calibration after a scan reuses what is there instead of embedding again. Caches written as
`part-*.npz` files by earlier versions are moved into the database when opened.

The cache is input like any other file: it is checked when opened (a regular file, SQLite's
quick_check, exactly this module's table and nothing else: no trigger, view or other table), and
each vector when read (its checksum, length, dimension and finite values). A database that fails is
set aside (renamed `vectors.sqlite.rejected-N`) with a note and the images are embedded again; an
entry that fails is not used and is replaced when its image is embedded again. The checksum finds
damage and entries written by other tools; it does not make a shared cache safe from the people who
can write to it (docs/security.md says whom to trust).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically
from audit.embedding.backends import encoder_id

FLUSH_EVERY = 2048
DATABASE = "vectors.sqlite"
SCHEMA_VERSION = 2  # 2: each vector with its checksum
TABLE_SQL = "CREATE TABLE vectors (sha256 TEXT PRIMARY KEY, vector BLOB NOT NULL, checksum BLOB NOT NULL) WITHOUT ROWID"
ALLOWED_OBJECTS = {("table", "vectors"), ("index", "sqlite_autoindex_vectors_1")}
SIDE_FILES = ("-journal", "-wal", "-shm")  # SQLite's own files beside a database


def vector_checksum(key: str, vector: bytes) -> bytes:
    """What each entry stores beside its vector: a 16-byte BLAKE2b of the key and the vector's bytes."""
    return hashlib.blake2b(key.encode("utf-8") + b"\0" + vector, digest_size=16).digest()


class EmbeddingCache:
    """`dim`: the encoder's vector length, when known (a vector of another length is not used).
    `notes`: what was set aside or refused, for the scan's summary."""

    def __init__(self, root: str | Path, embedder_spec: str, preprocess: str, dim: int | None = None):
        key = hashlib.sha256(f"{encoder_id(embedder_spec)}|{preprocess}".encode()).hexdigest()[:16]
        self.folder, self.dim = Path(root) / key, dim
        self.notes: list[str] = []
        self.rejected: set[str] = set()  # keys whose stored entry failed its check (replaced on the next put)
        if os.path.lexists(self.folder) and not self.folder.is_dir():
            self._set_aside(self.folder, "is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        spec = f"embedder={embedder_spec}\npreprocess={preprocess}\n"
        write_atomically(self.folder / "SPEC.txt", lambda p: p.write_text(spec))
        self._db = self._open()
        self._pending: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("part-*.npz")):
            self._move_old_part(part)

    def _open(self) -> sqlite3.Connection:
        """The database, checked; one that fails is set aside and a new one started."""
        path = self.folder / DATABASE
        problem, db = _file_problem(path), None
        if problem is None:
            db = sqlite3.connect(path, check_same_thread=False)  # the stage may prefetch in a thread
            problem = _database_problem(db)
        if problem is not None:
            if db is not None:
                db.close()
            self._set_aside(path, problem)
            db = sqlite3.connect(path, check_same_thread=False)
        db.execute("PRAGMA trusted_schema = OFF")
        if not _objects(db):
            db.execute(TABLE_SQL)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.commit()
        return db

    def _set_aside(self, path: Path, problem: str) -> None:
        aside = _free_name(path)
        for suffix in ("", *SIDE_FILES):
            if os.path.lexists(f"{path}{suffix}"):
                os.rename(f"{path}{suffix}", f"{aside}{suffix}")
        self.notes.append(
            f"the embedding cache {path} {problem}; it was set aside as {aside.name} and the images are embedded again"
        )

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
        """The vector of `sha256`, or None when there is none or its entry fails its check."""
        if sha256 in self._pending:
            return self._pending[sha256]
        found = self._db.execute("SELECT vector, checksum FROM vectors WHERE sha256 = ?", (sha256,)).fetchone()
        if found is None:
            return None
        vector = self._checked(sha256, *found)
        if vector is None:
            self.rejected.add(sha256)
        return vector

    def _checked(self, key: str, stored, checksum) -> np.ndarray | None:
        if (
            not isinstance(stored, bytes)
            or not isinstance(checksum, bytes)
            or len(stored) % 4
            or checksum != vector_checksum(key, stored)
        ):
            return None
        vector = np.frombuffer(stored, dtype=np.float32)
        if vector.size == 0 or (self.dim is not None and vector.size != self.dim) or not np.isfinite(vector).all():
            return None
        return vector.copy()

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        for key, vector in zip(keys, vectors):
            self._pending.setdefault(key, np.asarray(vector, dtype=np.float32))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Persist the vectors added since the last flush, in one transaction: a vector already stored
        stays, one whose stored entry failed its check is replaced."""
        if not self._pending:
            return
        rows = [(key, vector.tobytes()) for key, vector in self._pending.items()]
        with self._db:
            for verb, chosen in (
                ("REPLACE", [r for r in rows if r[0] in self.rejected]),
                ("IGNORE", [r for r in rows if r[0] not in self.rejected]),
            ):
                self._db.executemany(
                    f"INSERT OR {verb} INTO vectors VALUES (?, ?, ?)",
                    ((key, data, vector_checksum(key, data)) for key, data in chosen),
                )
        self._pending = {}

    def note_rejected(self) -> None:
        """Add to `notes` how many stored entries failed their check since the last call."""
        if self.rejected:
            self.notes.append(
                f"{len(self.rejected)} cached vector(s) in {self.folder / DATABASE} failed their "
                "check (checksum, length or values) and were not used; those images were embedded again"
            )
            self.rejected = set()

    def close(self) -> None:
        """Flush, note the entries that failed their check, and close the database."""
        self.flush()
        self.note_rejected()
        self._db.close()


def _file_problem(path: Path) -> str | None:
    """Why the thing at the database's name cannot be opened as one, or None (absent or a regular file)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    return (
        "is a link"
        if stat.S_ISLNK(mode)
        else "is a folder"
        if stat.S_ISDIR(mode)
        else "is a FIFO"
        if stat.S_ISFIFO(mode)
        else "is not a plain file"
    )


def _database_problem(db: sqlite3.Connection) -> str | None:
    """Why an opened database is not a sound cache of this version, or None."""
    try:
        db.execute("PRAGMA trusted_schema = OFF")
        check = db.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            return f"is damaged (SQLite quick_check: {check[0] if check else 'no answer'})"
        objects = _objects(db)
        if not objects:
            return None  # empty: a new cache
        if set(objects) - ALLOWED_OBJECTS or objects.get(("table", "vectors")) != TABLE_SQL:
            return (
                "holds other tables, views or triggers than a cache of this version (an earlier version's, "
                "or not a cache)"
            )
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            return f"is not of schema version {SCHEMA_VERSION}"
    except sqlite3.DatabaseError as e:
        return f"is not a readable SQLite database ({e})"
    return None


def _objects(db: sqlite3.Connection) -> dict[tuple[str, str], str | None]:
    return {(kind, name): sql for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master")}


def _free_name(path: Path) -> Path:
    for n in itertools.count(1):
        aside = path.with_name(f"{path.name}.rejected-{n}")
        if not any(os.path.lexists(f"{aside}{suffix}") for suffix in ("", *SIDE_FILES)):
            return aside
    raise AssertionError("unreachable")
