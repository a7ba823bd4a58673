"""The embedding cache keeps vectors on disk and reads them back one by one."""

from __future__ import annotations

import numpy as np

from audit.embedding.cache import FLUSH_EVERY, EmbeddingCache


def test_vectors_survive_reopening_and_only_unflushed_ones_stay_in_memory(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(FLUSH_EVERY + 3, 8)).astype(np.float32)
    keys = [f"sha{i}" for i in range(len(vectors))]
    cache = EmbeddingCache(tmp_path, "spec", "squash")
    cache.put(keys, vectors)
    assert len(cache._pending) == 0  # a full batch went to disk at once
    cache.put(["extra"], vectors[:1])
    assert len(cache._pending) == 1 and len(cache) == len(keys) + 1
    cache.flush()
    again = EmbeddingCache(tmp_path, "spec", "squash")
    assert len(again) == len(keys) + 1 and not again._pending
    assert np.array_equal(again.get("sha5"), vectors[5]) and again.get("unknown") is None
    again.put(["sha5"], np.zeros((1, 8), np.float32))  # a stored vector is kept
    again.flush()
    assert np.array_equal(EmbeddingCache(tmp_path, "spec", "squash").get("sha5"), vectors[5])
    assert EmbeddingCache(tmp_path, "other spec", "squash").get("sha5") is None


def test_caches_of_earlier_versions_are_moved_into_the_database(tmp_path):
    folder = EmbeddingCache(tmp_path, "spec", "squash").folder
    np.savez(folder / "part-000000-1.npz", sha256=np.array(["a", "b"]), vectors=np.eye(2, dtype=np.float32))
    (folder / "part-000001-1.npz").write_bytes(b"cut short by a crash")
    cache = EmbeddingCache(tmp_path, "spec", "squash")
    assert np.array_equal(cache.get("b"), [0, 1]) and len(cache) == 2
    assert not list(folder.glob("part-*.npz"))
