"""The fit cache: one training per key, the stored parameters on a hit, and an unreadable entry trained again."""

from __future__ import annotations

import numpy as np

from loops.models.fit_cache import FitCache


def test_keys_tell_apart_values_dtypes_and_shapes():
    a = np.arange(6, dtype=np.int64)
    assert FitCache.key(1, a) == FitCache.key(1, a.copy())
    assert FitCache.key(1, a) != FitCache.key(2, a)
    assert FitCache.key(1, a) != FitCache.key(1, a.astype(np.int32))
    assert FitCache.key(1, a) != FitCache.key(1, a.reshape(2, 3))
    assert FitCache.key(1, a) != FitCache.key(1, a + 1)
    assert FitCache.key("ab", "c") != FitCache.key("a", "bc")


def test_a_fit_trains_once_and_an_unreadable_entry_is_trained_again(tmp_path):
    cache, calls = FitCache(tmp_path / "fits"), []

    def train():
        calls.append(1)
        return {"weight": np.full((2, 3), float(len(calls)), np.float32)}

    first = cache.fit("k", train)
    again = cache.fit("k", train)
    assert len(calls) == 1 and (again["weight"] == first["weight"]).all()
    (tmp_path / "fits" / "k.safetensors").write_bytes(b"not a safetensors file")
    replaced = cache.fit("k", train)
    assert len(calls) == 2 and (replaced["weight"] == 2.0).all()
    assert (cache.fit("k", train)["weight"] == 2.0).all() and len(calls) == 2
