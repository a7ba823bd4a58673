"""Clusters of near-duplicates within one scanned set.

Two images are linked when one is among the other's `k` nearest neighbours and their embeddings'
cosine similarity is >= threshold (exact faiss k-NN on an inner-product index) or, when pHashes
are given, their Hamming distance is <= a bound (faiss binary k-NN; without embeddings, as in a
scan with `--embedder none`, pHashes alone); clusters are the connected components of those
links, found by union-find. Each image keeps at most `k` links, so memory and the work after the
search are O(n k) however close the embeddings are (every pair above the threshold would be
O(n^2): 8.3 GB for 16,000 near-identical images). The components equal those of all pairs
whenever no image has more than `k` near-duplicates; an image with more is linked to its `k`
closest, which lie in its own cluster, so only a cluster of more than `k` members could come out
split. The exact search itself costs n^2 * dim flops (about a minute for 10^5 vectors of dim 512
on two cores).
"""
from __future__ import annotations

import faiss
import numpy as np

import audit.threads as threads
from audit.bank.phash import DEFAULT_PHASH_DISTANCE, HASH_BITS, to_bytes

QUERY_CHUNK = 4096  # queries per k-NN search: bounds faiss's per-call result buffers
DEFAULT_K = 32  # neighbours searched per image: the links each image can make


def near_duplicate_clusters(vectors, ids: list[str], threshold: float = 0.95, phashes: list[str | None] | None = None,
                            phash_distance: int = DEFAULT_PHASH_DISTANCE, k: int = DEFAULT_K) -> list[list[str]]:
    """Clusters (>= 2 members) of near-duplicate ids, largest first, each sorted by id.

    vectors: n x dim L2-normalised embeddings, row i belonging to ids[i]; None links by pHash alone.
    phashes: optional hex pHashes aligned with ids (None where missing); images within
    `phash_distance` bits are linked as well. k: neighbours searched per image (see the module).
    """
    if vectors is None and phashes is None:
        raise ValueError("near-duplicate clusters need embeddings, pHashes or both")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = None if vectors is None else np.ascontiguousarray(vectors, dtype=np.float32)
    if (x is not None and len(x) != len(ids)) or (phashes is not None and len(phashes) != len(ids)):
        got = ("" if x is None else f"{len(x)} vectors, ") + f"{len(ids)} ids"
        got += "" if phashes is None else f" and {len(phashes)} phashes"
        raise ValueError(f"{got}: lengths differ")
    if len(ids) < 2:
        return []
    if x is not None and x.ndim != 2:
        raise ValueError(f"vectors must be n x dim, got shape {x.shape}")
    roots = np.arange(len(ids))
    with threads.limited(threads.main_share(), torch=False):
        if x is not None:
            _embedding_links(x, threshold, k, roots)
        if phashes is not None:
            _phash_links(phashes, phash_distance, k, roots)
    return _clusters(_flatten(roots), ids)


def _embedding_links(x: np.ndarray, threshold: float, k: int, roots: np.ndarray) -> None:
    """Union each vector with those of its k nearest whose inner product is >= threshold."""
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    for start, similarity, found in _knn(index, x, k):
        _union_found(roots, start, found, similarity >= np.float32(threshold))


def _phash_links(phashes: list[str | None], max_distance: int, k: int, roots: np.ndarray) -> None:
    """Union each pHash with those of its k nearest within `max_distance` bits; missing hashes link nothing."""
    present = np.array([i for i, h in enumerate(phashes) if h is not None], dtype=np.int64)
    if len(present) < 2:
        return
    codes = to_bytes([phashes[i] for i in present])
    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(codes)
    for start, distance, found in _knn(index, codes, k):
        keep = (distance <= max_distance) & (found >= 0)
        rows = present[start:start + len(found)]
        _union_pairs(roots, np.repeat(rows, found.shape[1])[keep.ravel()], present[found[keep]])


def _knn(index, queries: np.ndarray, k: int):
    """(first query, scores, neighbours) per chunk of QUERY_CHUNK queries; k + 1 neighbours, as a
    query usually finds itself."""
    for start in range(0, len(queries), QUERY_CHUNK):
        scores, found = index.search(queries[start:start + QUERY_CHUNK], min(k + 1, index.ntotal))
        yield start, scores, found


def _union_found(roots: np.ndarray, start: int, found: np.ndarray, keep: np.ndarray) -> None:
    keep &= found >= 0
    queries = np.repeat(np.arange(start, start + len(found)), found.shape[1])
    _union_pairs(roots, queries[keep.ravel()], found[keep])


def _union_pairs(roots: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
    """Union-find over arrays: link each pair's roots (the smaller index becomes the root), then
    compress paths; repeated until every pair shares a root. Each pass is O(pairs + n)."""
    first, second = first[first != second], second[first != second]
    while len(first):
        a, b = _find(roots, first), _find(roots, second)
        apart = a != b
        if not apart.any():
            return
        a, b = a[apart], b[apart]
        low, high = np.minimum(a, b), np.maximum(a, b)
        np.minimum.at(roots, high, low)  # several pairs may re-root one node: the smallest wins, the rest retry
        first, second = first[apart], second[apart]


def _find(roots: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The roots of `nodes`, compressing every path on the way."""
    _flatten(roots)
    return roots[nodes]


def _flatten(roots: np.ndarray) -> np.ndarray:
    """Point every node straight at its root (in place): roots only point to smaller indices."""
    while True:
        parents = roots[roots]
        if np.array_equal(parents, roots):
            return roots
        roots[:] = parents


def _clusters(roots: np.ndarray, ids: list[str]) -> list[list[str]]:
    sizes = np.bincount(roots, minlength=len(ids))
    groups: dict[int, list[str]] = {}
    for i in np.flatnonzero(sizes[roots] >= 2):
        groups.setdefault(int(roots[i]), []).append(ids[i])
    clusters = [sorted(members) for members in groups.values()]
    return sorted(clusters, key=lambda members: (-len(members), members[0]))
