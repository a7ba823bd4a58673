"""Clusters of near-duplicates within one scanned set.

Two images are linked when their embeddings' cosine similarity is >= threshold (faiss range search
on an exact inner-product index) or, when pHashes are given, their Hamming distance is <= a bound
(faiss binary range search; without embeddings, as in a scan with `--embedder none`, pHashes alone); clusters are the connected components of those links. Memory grows
with the number of linked pairs, not with n^2; exact search costs n^2 * dim flops (about a minute
for 10^5 vectors of dim 512 on two cores).
"""
from __future__ import annotations

import faiss
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from audit.bank.phash import DEFAULT_PHASH_DISTANCE, HASH_BITS, to_bytes

QUERY_CHUNK = 4096  # queries per range search: bounds faiss's per-call result buffers


def near_duplicate_clusters(vectors, ids: list[str], threshold: float = 0.95, phashes: list[str | None] | None = None,
                            phash_distance: int = DEFAULT_PHASH_DISTANCE) -> list[list[str]]:
    """Clusters (>= 2 members) of near-duplicate ids, largest first, each sorted by id.

    vectors: n x dim L2-normalised embeddings, row i belonging to ids[i]; None links by pHash alone.
    phashes: optional hex pHashes aligned with ids (None where missing); pairs within
    `phash_distance` bits are linked as well.
    """
    if vectors is None and phashes is None:
        raise ValueError("near-duplicate clusters need embeddings, pHashes or both")
    x = None if vectors is None else np.ascontiguousarray(vectors, dtype=np.float32)
    if (x is not None and len(x) != len(ids)) or (phashes is not None and len(phashes) != len(ids)):
        got = ("" if x is None else f"{len(x)} vectors, ") + f"{len(ids)} ids"
        got += "" if phashes is None else f" and {len(phashes)} phashes"
        raise ValueError(f"{got}: lengths differ")
    if len(ids) < 2:
        return []
    if x is not None and x.ndim != 2:
        raise ValueError(f"vectors must be n x dim, got shape {x.shape}")
    pairs = [] if x is None else [_embedding_pairs(x, threshold)]
    if phashes is not None:
        pairs.append(_phash_pairs(phashes, phash_distance))
    first = np.concatenate([p[0] for p in pairs])
    second = np.concatenate([p[1] for p in pairs])
    return _clusters(first, second, ids)


def _embedding_pairs(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j and x_i . x_j >= threshold."""
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))  # faiss keeps IP > radius
    return _range_pairs(index, x, radius)


def _phash_pairs(phashes: list[str | None], max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j and Hamming(phash_i, phash_j) <= max_distance; missing hashes link nothing."""
    present = np.array([i for i, h in enumerate(phashes) if h is not None], dtype=np.int64)
    if len(present) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    codes = to_bytes([phashes[i] for i in present])
    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(codes)
    first, second = _range_pairs(index, codes, max_distance + 1)  # faiss keeps distance < radius
    return present[first], present[second]


def _range_pairs(index, queries: np.ndarray, radius) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j), i < j, that `index` range-searches within `radius` of query i, in query chunks."""
    firsts, seconds = [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        lims, _, found = index.range_search(queries[start:start + QUERY_CHUNK], radius)
        query = start + np.repeat(np.arange(len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = query < found
        firsts.append(query[keep])
        seconds.append(found[keep])
    return np.concatenate(firsts), np.concatenate(seconds)


def _clusters(first: np.ndarray, second: np.ndarray, ids: list[str]) -> list[list[str]]:
    n = len(ids)
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    groups: dict[int, list[str]] = {}
    for i in np.flatnonzero(sizes[component] >= 2):
        groups.setdefault(int(component[i]), []).append(ids[i])
    clusters = [sorted(members) for members in groups.values()]
    return sorted(clusters, key=lambda members: (-len(members), members[0]))
