"""The embedding cache is input too: a damaged or hostile vectors.sqlite (not a database, cut short,
another schema, a trigger, a folder, a FIFO or a link in its place) is set aside with a note and the
images are embedded again, never losing the scan; an entry whose checksum, length or values are
wrong is not used; `--overwrite` clears the output folder's cache."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3

import numpy as np
import pytest

from audit import ScanConfig, scan
from audit.embedding import cache as cache_module
from audit.embedding.cache import DATABASE, EmbeddingCache
from tests.conftest import image_bytes, noise_image

DIM = 8
SPEC, PREPROCESS = "spec", "clip"


def folder_of(root):
    """The cache's folder for SPEC (made by opening it once, empty)."""
    cache = EmbeddingCache(root, SPEC, PREPROCESS, dim=DIM)
    cache.close()
    (cache.folder / DATABASE).unlink()
    return cache.folder


def old_schema(db):
    db.execute("CREATE TABLE vectors (sha256 TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO vectors VALUES ('k', ?)", (np.ones(DIM, np.float32).tobytes(),))


def with_trigger(db):
    db.execute(cache_module.TABLE_SQL)
    db.execute("CREATE TRIGGER t AFTER INSERT ON vectors BEGIN DELETE FROM vectors; END")


def view(db):
    db.execute("CREATE VIEW vectors AS SELECT 'k' AS sha256, x'00' AS vector, x'00' AS checksum")


def database(build):
    def make(path):
        db = sqlite3.connect(path)
        build(db)
        db.commit()
        db.close()

    return make


def truncated(path):
    database(
        lambda db: (
            db.execute(cache_module.TABLE_SQL),
            db.executemany(
                "INSERT INTO vectors VALUES (?, ?, ?)",
                [(f"k{i}", os.urandom(4 * DIM), os.urandom(16)) for i in range(400)],
            ),
        )
    )(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def link_outside(path):
    outside = path.parents[2] / "outside.txt"
    outside.write_text("not yours")
    os.symlink(outside, path)


HOSTILE_FILES = {
    "not a database": lambda path: path.write_bytes(os.urandom(3000)),
    "a database cut in half": truncated,
    "another table": database(lambda db: db.execute("CREATE TABLE other (x)")),
    "an earlier version's schema": database(old_schema),
    "a trigger": database(with_trigger),
    "a view named vectors": database(view),
    "a folder": lambda path: path.mkdir(),
    "a FIFO": lambda path: os.mkfifo(path),
    "a link to a file outside": link_outside,
}


@pytest.fixture
def no_hang():
    def hung(*_):
        raise TimeoutError("opening the cache hung")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("kind", HOSTILE_FILES)
def test_a_hostile_database_is_set_aside_and_the_cache_works_again(tmp_path, kind, no_hang):
    folder = folder_of(tmp_path / "cache")
    HOSTILE_FILES[kind](folder / DATABASE)
    cache = EmbeddingCache(tmp_path / "cache", SPEC, PREPROCESS, dim=DIM)
    assert any("set aside" in note for note in cache.notes), cache.notes
    assert cache.get("k") is None
    cache.put(["a"], np.ones((1, DIM), np.float32))
    cache.close()
    again = EmbeddingCache(tmp_path / "cache", SPEC, PREPROCESS, dim=DIM)
    assert np.array_equal(again.get("a"), np.ones(DIM, np.float32)) and again.notes == []
    assert list(folder.glob(f"{DATABASE}.rejected-*"))
    if kind == "a link to a file outside":
        assert (tmp_path / "outside.txt").read_text() == "not yours"


def entry(key: str, vector: bytes, checksum: bytes | None = None):
    return key, vector, cache_module.vector_checksum(key, vector) if checksum is None else checksum


BAD_ENTRIES = {
    "a checksum that does not match (poisoned)": entry("k", np.zeros(DIM, np.float32).tobytes(), b"\0" * 16),
    "the wrong number of dimensions": entry("k", np.ones(DIM + 1, np.float32).tobytes()),
    "NaN values": entry("k", np.full(DIM, np.nan, np.float32).tobytes()),
    "a length that is no whole number of floats": entry("k", b"\x01" * 5),
    "text instead of bytes": ("k", "not a vector", b"\0" * 16),
}


@pytest.mark.parametrize("kind", BAD_ENTRIES)
def test_a_bad_entry_is_not_used_and_is_replaced(tmp_path, kind):
    folder = EmbeddingCache(tmp_path, SPEC, PREPROCESS, dim=DIM).folder
    good = np.arange(DIM, dtype=np.float32)
    with sqlite3.connect(folder / DATABASE) as db:
        db.executemany("INSERT INTO vectors VALUES (?, ?, ?)", [BAD_ENTRIES[kind], entry("g", good.tobytes())])
    cache = EmbeddingCache(tmp_path, SPEC, PREPROCESS, dim=DIM)
    assert cache.get("k") is None and np.array_equal(cache.get("g"), good)
    cache.put(["k"], good[None])  # embedded again: replaces the bad entry
    cache.close()
    assert any("1 cached vector" in note for note in cache.notes)
    assert np.array_equal(EmbeddingCache(tmp_path, SPEC, PREPROCESS, dim=DIM).get("k"), good)


def test_a_scan_over_a_hostile_shared_cache_embeds_again_and_finishes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(image_bytes(noise_image(seed=i)))
    config, shared = ScanConfig(detectors=(), embedder="random", embed=True), tmp_path / "shared"
    scan(str(src), tmp_path / "first", workers=0, config=config, embedding_cache=shared)
    database_path = next(shared.rglob(DATABASE))
    database_path.write_bytes(b"SQLite format 3\0" + os.urandom(5000))  # a header, then garbage
    again = scan(str(src), tmp_path / "again", workers=0, config=config, embedding_cache=shared)
    assert again.summary["counts"]["ok"] == 3
    assert any("set aside" in note for note in again.summary["notes"])
    assert len(EmbeddingCache(shared, "random", "clip")) == 3  # embedded again, into a sound cache


def test_overwrite_clears_the_output_folders_cache(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(image_bytes(noise_image()))
    out = tmp_path / "out"
    scan(str(src), out, workers=0, config=ScanConfig(detectors=("metadata",)))
    cache = EmbeddingCache(out / "embeddings", SPEC, PREPROCESS, dim=DIM)
    cache.put(["planted"], np.ones((1, DIM), np.float32))
    cache.close()
    scan(str(src), out, workers=0, config=ScanConfig(detectors=("metadata",)), overwrite=True)
    assert not (out / "embeddings").exists()


def test_the_checksum_covers_the_key_and_the_bytes():
    vector = np.ones(DIM, np.float32).tobytes()
    assert cache_module.vector_checksum("a", vector) != cache_module.vector_checksum("b", vector)
    assert len(cache_module.vector_checksum("a", vector)) == 16
    assert cache_module.vector_checksum("a", vector) == hashlib.blake2b(b"a\0" + vector, digest_size=16).digest()
