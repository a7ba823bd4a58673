"""Near-duplicate clusters over a whole scan: the pHash search equals brute force (random hashes,
planted copies, thousands of identical hashes), copies far apart in the scan are linked, and the
embedding search finds planted copies when it runs on inverted lists."""

from __future__ import annotations

import time

import numpy as np
import pytest

from audit.bank import clusters
from audit.bank.clusters import Links, chunk_plan, hash_pairs, near_duplicate_clusters
from audit.report.duplicates import DuplicateTally


def random_codes(n: int, seed: int, copies: float = 0.1, max_flips: int = 8) -> np.ndarray:
    """n random 64-bit codes, a share of them copies of others with up to max_flips bits flipped."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    planted = rng.choice(n, int(n * copies), replace=False)
    for i in planted:
        flips = rng.choice(64, rng.integers(0, max_flips + 1), replace=False)
        codes[i] = codes[rng.integers(0, n)] ^ np.uint64(sum(1 << int(b) for b in flips))
    return codes


def brute_force_pairs(codes: np.ndarray, max_distance: int) -> set[tuple[int, int]]:
    a, b = np.nonzero(np.bitwise_count(codes[:, None] ^ codes[None, :]) <= max_distance)
    return {(int(i), int(j)) for i, j in zip(a, b) if i < j}


def brute_force_clusters(codes: np.ndarray, ids: list[str], max_distance: int) -> list[list[str]]:
    links = Links(len(codes))
    pairs = np.array(sorted(brute_force_pairs(codes, max_distance)), dtype=np.int64).reshape(-1, 2)
    links.add(pairs[:, 0], pairs[:, 1])
    roots = links.roots()
    groups: dict[int, list[str]] = {}
    for i, root in enumerate(roots):
        groups.setdefault(int(root), []).append(ids[i])
    found = [sorted(g) for g in groups.values() if len(g) >= 2]
    return sorted(found, key=lambda members: (-len(members), members[0]))


@pytest.mark.parametrize("max_distance", [1, 3, 8, 12])
def test_chunked_hash_pairs_are_exactly_the_brute_force_pairs(max_distance):
    codes = np.unique(random_codes(3000, seed=max_distance, copies=0.3, max_flips=max_distance + 2))
    assert chunk_plan(len(codes), max_distance) is not None  # the chunked search runs, not brute force
    found = set()
    for a, b in hash_pairs(codes, max_distance):
        found |= set(zip(a.tolist(), b.tolist()))
    assert {(min(p), max(p)) for p in found} == brute_force_pairs(codes, max_distance)


@pytest.mark.parametrize("seed", range(3))
def test_phash_clusters_equal_brute_force(seed):
    codes = random_codes(4000, seed)
    codes[:40] = codes[40]  # a group of identical hashes beside the near ones
    ids = [f"i{j:05d}" for j in np.random.default_rng(seed).permutation(len(codes))]
    expected = brute_force_clusters(codes, ids, 8)
    assert len(expected) > 100
    assert near_duplicate_clusters(None, ids, phashes=codes) == expected
    assert near_duplicate_clusters(None, ids, phashes=[f"{int(c):016x}" for c in codes]) == expected


def test_ten_thousand_copies_of_one_hash_do_not_go_quadratic():
    codes = random_codes(2000, seed=5, copies=0.0)
    many = np.concatenate([np.full(10_000, codes[0]), codes, np.full(10_000, codes[1] ^ np.uint64(0b111))])
    ids = [f"i{j:05d}" for j in range(len(many))]
    start = time.process_time()
    found = near_duplicate_clusters(None, ids, phashes=many)
    assert time.process_time() - start < 5  # every pair of copies would be 10^8 of them
    assert found == [ids[:10_001], [ids[10_001]] + ids[12_000:]]


class HashOnlyStage:
    hash_only = True
    embedder = None


def test_copies_far_apart_in_the_scan_are_linked():
    tally = DuplicateTally(HashOnlyStage(), threshold=0.95, phash_distance=8)
    codes = random_codes(120_000, seed=7, copies=0.0)
    codes[110_000] = codes[3] ^ np.uint64(0b101)  # a copy 110,000 images after its original
    for i, code in enumerate(codes):
        tally.add({"id": f"img{i:06d}", "flagged": i == 3, "phash": f"{int(code):016x}", "sha256": ""})
    summary = tally.summary()
    assert ["img000003", "img110000"] in summary["largest"]
    assert summary["flagged_copies"] >= 1 and "img110000" in summary["flagged_copy_ids"]
    assert summary["window"] == 120_000 and summary["windows"] == 1


def planted_vectors(n: int, dim: int, copies: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """n unit vectors in loose groups (like image embeddings), `copies` of them near-copies of others."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 200, dim))
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sources = rng.choice(n, copies, replace=False)
    targets = rng.choice(np.setdiff1d(np.arange(n), sources), copies, replace=False)
    x[targets] = x[sources] + 0.15 * rng.standard_normal((copies, dim)) / np.sqrt(dim)  # cosine ~0.99
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), list(zip(sources.tolist(), targets.tolist()))


def test_the_embedding_search_on_inverted_lists_finds_planted_copies(monkeypatch):
    monkeypatch.setattr(clusters, "LIST_SIZE", 100)
    monkeypatch.setattr(clusters, "NPROBE", 4)
    x, planted = planted_vectors(3000, 32, 150, seed=3)
    assert len(x) // clusters.LIST_SIZE > clusters.NPROBE  # inverted lists, not one exact search
    ids = [f"v{j:05d}" for j in range(len(x))]
    found = near_duplicate_clusters(x, ids)
    by_id = {i: c for c in found for i in c}
    linked = sum(ids[a] in by_id and ids[b] in by_id.get(ids[a], []) for a, b in planted)
    assert linked >= 0.97 * len(planted)
    copies = {ids[i] for pair in planted for i in pair}
    assert all(set(c) <= copies for c in found)  # nothing but the planted copies is linked
    assert near_duplicate_clusters(x.astype(np.float16), ids) == found
