"""Clusters of near-duplicates within one scanned set, over the whole set in near-linear time.

Two images are linked when their pHashes are within `phash_distance` bits, or when one embedding
is among the other's `k` nearest with cosine similarity >= threshold; clusters are the connected
components of the links, found by union-find. Identical hashes and identical vectors are grouped
first (a sort), so 10^4 copies of one image cost a sort, not 10^8 pairs.

pHashes, exact (multi-index hashing): the 64 bits are cut into m chunks given radii r_i with
sum(r_i + 1) > d, so a pair within d bits differs in some chunk i by at most r_i bits (pigeonhole).
Each chunk's values are bucketed in a table; every distinct hash probes the buckets within r_i bits
of its own chunk value, and the candidates are checked by popcount. Every pair within the distance is
found, so the clusters equal those of brute force. The work is about U * P probes plus U^2 * P / 2^b
candidates for U distinct hashes, P probes per hash and b bits per chunk; m is chosen for U (three
chunks of 21-22 bits and radius 2 at 10^5, P = 718), or brute force when that is cheaper. It stays
near-linear up to about 10^6 distinct hashes; beyond, the candidates grow as U^2 / 2^22.

Embeddings, approximate (an inverted-file self-join): spherical k-means cuts the distinct vectors into
about n / LIST_SIZE lists; each vector belongs to its nearest list and is compared, by matrix
products in blocks of BLOCK similarities, with the members of its NPROBE nearest lists, keeping per
list its k + 1 most similar above the threshold (one is usually itself). Memory after the search is
O(n k) however close the vectors are. With at most NPROBE lists every list is probed and the search
is exact; above, a copy is missed only when neither image probes the other's list (recall against
exact search: benchmarks/cluster_scaling.py). The work is n * NPROBE * LIST_SIZE * dim multiply-adds
plus n * n / LIST_SIZE * dim for the list assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import combinations
from math import comb

import faiss
import numpy as np

import audit.threads as threads
from audit.bank.phash import DEFAULT_PHASH_DISTANCE, to_bytes

DEFAULT_K = 32  # neighbours kept per image and list: the links each image can make there
LIST_SIZE = 500  # vectors per inverted list, on average
NPROBE = 8  # nearest lists each vector is compared with
BLOCK = 1 << 22  # similarities (or candidate pairs) held at once: 16 MB of float32
TRAIN_PER_LIST = 64  # k-means training vectors per list
KMEANS_ITERATIONS = 10
SEED = 0
PAIRS_HELD = 1 << 22  # links gathered before they are merged into the union-find
MAX_CHUNK_BITS = 22  # widest pHash chunk: tables of 2^22 entries
# Seconds per unit of work, fitted on 2 cores, used only to choose the chunking: one hash in one probe
# pass, one candidate pair, one table entry, one pass, one pair compared by brute force.
COST_PROBE, COST_CANDIDATE, COST_TABLE, COST_PASS, COST_BRUTE = 3.6e-9, 9.4e-9, 3e-9, 26e-6, 2e-9


def near_duplicate_clusters(
    vectors,
    ids: Sequence[str],
    threshold: float = 0.95,
    phashes=None,
    phash_distance: int = DEFAULT_PHASH_DISTANCE,
    k: int = DEFAULT_K,
) -> list[list[str]]:
    """Clusters (>= 2 members) of near-duplicate ids, largest first, each sorted by id.

    vectors: n x dim L2-normalised embeddings (float32 or float16), row i belonging to ids[i]; None
    links by pHash alone. phashes: hex pHashes aligned with ids (None where missing), or their uint64
    codes as an array (a masked array marks the missing); images within `phash_distance` bits are
    linked as well. k: neighbours kept per image and list (see the module).
    """
    groups = near_duplicate_groups(vectors, len(ids), threshold, phashes, phash_distance, k)
    clusters = [sorted(ids[i] for i in group) for group in groups]
    return sorted(clusters, key=lambda members: (-len(members), members[0]))


def near_duplicate_groups(
    vectors,
    count: int,
    threshold: float = 0.95,
    phashes=None,
    phash_distance: int = DEFAULT_PHASH_DISTANCE,
    k: int = DEFAULT_K,
) -> list[np.ndarray]:
    """The clusters of `near_duplicate_clusters` as arrays of positions 0..count-1, in no set order."""
    if vectors is None and phashes is None:
        raise ValueError("near-duplicate clusters need embeddings, pHashes or both")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = None if vectors is None else _as_matrix(vectors)
    if (x is not None and len(x) != count) or (phashes is not None and len(phashes) != count):
        got = ("" if x is None else f"{len(x)} vectors, ") + f"{count} ids"
        got += "" if phashes is None else f" and {len(phashes)} phashes"
        raise ValueError(f"{got}: lengths differ")
    if count < 2:
        return []
    if x is not None and x.ndim != 2:
        raise ValueError(f"vectors must be n x dim, got shape {x.shape}")
    links = Links(count)
    with threads.limited(threads.main_share(), torch=False):
        if x is not None:
            embedding_links(x, threshold, k, links)
        if phashes is not None:
            present, codes = phash_codes(phashes)
            phash_links(codes, phash_distance, links, present)
    return _components(links.roots())


def _as_matrix(vectors) -> np.ndarray:
    x = np.asarray(vectors)
    return np.ascontiguousarray(x, dtype=x.dtype if x.dtype in (np.float16, np.float32) else np.float32)


class Links:
    """Union-find over n nodes fed with pairs in bulk: pairs gather up to PAIRS_HELD, then merge."""

    def __init__(self, n: int):
        self._roots = np.arange(n)
        self._first: list[np.ndarray] = []
        self._second: list[np.ndarray] = []
        self._held = 0

    def add(self, first: np.ndarray, second: np.ndarray) -> None:
        if len(first):
            self._first.append(np.asarray(first, dtype=np.int64))
            self._second.append(np.asarray(second, dtype=np.int64))
            self._held += len(first)
        if self._held >= PAIRS_HELD:
            self._merge()

    def roots(self) -> np.ndarray:
        """Each node's root (the smallest node of its component)."""
        self._merge()
        return _flatten(self._roots)

    def _merge(self) -> None:
        if self._first:
            _union_pairs(self._roots, np.concatenate(self._first), np.concatenate(self._second))
        self._first, self._second, self._held = [], [], 0


# --- pHashes -------------------------------------------------------------------------------------


def phash_codes(phashes) -> tuple[np.ndarray, np.ndarray]:
    """(positions that have a hash, their uint64 codes) from hex strings with None, or from codes."""
    if isinstance(phashes, np.ma.MaskedArray):
        present = np.flatnonzero(~np.ma.getmaskarray(phashes))
        return present, np.asarray(phashes.data, dtype=np.uint64)[present]
    if isinstance(phashes, np.ndarray) and phashes.dtype == np.uint64:
        return np.arange(len(phashes)), phashes
    present = np.array([i for i, h in enumerate(phashes) if h is not None], dtype=np.int64)
    if not len(present):
        return present, np.zeros(0, dtype=np.uint64)
    codes = to_bytes([phashes[i] for i in present]).view(">u8").ravel().astype(np.uint64)
    return present, codes


def phash_links(codes: np.ndarray, max_distance: int, links: Links, nodes: np.ndarray | None = None) -> None:
    """Link every pair of `codes` within `max_distance` bits; code i is node nodes[i] (default i)."""
    nodes = np.arange(len(codes)) if nodes is None else nodes
    if len(codes) < 2:
        return
    distinct, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    links.add(nodes, nodes[first[inverse]])  # identical hashes: each joins the first of its group
    if max_distance < 1 or len(distinct) < 2:
        return
    for a, b in hash_pairs(distinct, max_distance):
        links.add(nodes[first[a]], nodes[first[b]])


def hash_pairs(codes: np.ndarray, max_distance: int):
    """Blocks (a, b) of index pairs whose distinct `codes` are within `max_distance` bits: every such
    pair at least once, in either order."""
    plan = chunk_plan(len(codes), max_distance)
    if plan is None:
        yield from _brute_pairs(codes, max_distance)
        return
    for bits, shift, radius in plan:
        yield from _chunk_pairs(codes, bits, shift, radius, max_distance)


def chunk_plan(n: int, max_distance: int) -> tuple[tuple[int, int, int], ...] | None:
    """The cheapest exact chunking for n distinct hashes as (bits, shift, radius) per chunk, or None
    when comparing every pair costs less. Planned once per power of two of n."""
    size = 1 << max(1, (n - 1).bit_length())
    brute = COST_BRUTE * size * size / 2
    if brute < COST_PASS * 64:
        return None
    cost, chunks = _cheapest_chunks(size, 64, max_distance + 1)
    if cost >= brute:
        return None
    shifts = [sum(bits for bits, _ in chunks[:i]) for i in range(len(chunks))]
    return tuple((bits, shift, radius) for (bits, radius), shift in zip(chunks, shifts))


@cache
def _cheapest_chunks(n: int, bits_left: int, need: int) -> tuple[float, tuple[tuple[int, int], ...]]:
    """(cost, ((bits, radius), ...)) covering `bits_left` bits with chunks whose radii + 1 add up to
    at least `need`: by pigeonhole, a pair within need - 1 bits is within its radius in some chunk."""
    if bits_left == 0:
        return (0.0, ()) if need <= 0 else (float("inf"), ())
    best: tuple[float, tuple[tuple[int, int], ...]] = (float("inf"), ())
    for bits in range(1, min(MAX_CHUNK_BITS, bits_left) + 1):
        for radius in range(min(bits, max(need, 1))):
            rest, chunks = _cheapest_chunks(n, bits_left - bits, max(0, need - radius - 1))
            cost = rest + _chunk_cost(n, bits, radius)
            if cost < best[0]:
                best = (cost, ((bits, radius),) + chunks)
    return best


def _chunk_cost(n: int, bits: int, radius: int) -> float:
    """Estimated seconds for one chunk: a full pass, then each other probe over half the values."""
    probes = sum(comb(bits, j) for j in range(radius + 1))
    return (
        COST_PROBE * n * (probes + 1) / 2
        + COST_CANDIDATE * n * n * probes / 2 ** (bits + 1)
        + COST_TABLE * 2**bits
        + COST_PASS * probes
    )


def _chunk_pairs(codes: np.ndarray, bits: int, shift: int, radius: int, max_distance: int):
    """Blocks (a, b) of codes within `max_distance` bits whose chunk values differ by at most
    `radius` bits: each such pair once.

    The codes are sorted by chunk value, so a bucket's members sit side by side, with their codes.
    A pair whose values differ, highest differing bit h, is probed from its lower value only: from
    the values with bit h clear. The hits of many probes are verified together (`_Verifier`)."""
    values = ((codes >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int32)
    order = np.argsort(values, kind="stable")
    values = values[order]
    counts = np.bincount(values, minlength=1 << bits)
    starts = np.cumsum(counts) - counts
    verify = _Verifier(codes[order], order, starts, counts, max_distance)
    yield from verify.same_bucket(values)
    occupied = counts > 0
    for top in range(bits if radius else 0):
        low = np.flatnonzero((values & (1 << top)) == 0)
        low_values = values[low]
        for lower in _flip_masks(top, radius - 1):
            keys = low_values ^ ((1 << top) | lower)
            hits = np.nonzero(np.take(occupied, keys))[0]
            yield from verify.add(low[hits], keys[hits])
    yield from verify.flush()


class _Verifier:
    """Probe hits (position in the sorted codes, bucket it hit) gathered up to BLOCK // 16, then
    expanded to the bucket's members and checked by popcount in blocks of about BLOCK pairs."""

    def __init__(self, ordered, order, starts, counts, max_distance: int):
        self._ordered, self._order, self._max = ordered, order, max_distance
        self._starts, self._counts = starts, counts
        self._hits: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._held = 0

    def same_bucket(self, values: np.ndarray):
        """The pairs of equal chunk values, each once."""
        members = _bucket_members(np.arange(len(values)), self._starts[values], self._counts[values])
        for a, b in members:
            keep = a < b  # each pair met from both ends, kept from one
            yield from self._close(a[keep], b[keep])

    def add(self, hits: np.ndarray, keys: np.ndarray):
        if len(hits):
            self._hits.append(hits)
            self._keys.append(keys)
            self._held += len(hits)
        if self._held >= BLOCK // 16:
            yield from self.flush()

    def flush(self):
        if not self._hits:
            return
        hits, keys = np.concatenate(self._hits), np.concatenate(self._keys)
        self._hits, self._keys, self._held = [], [], 0
        counts = np.take(self._counts, keys)
        for a, b in _bucket_members(hits, np.take(self._starts, keys), counts):
            yield from self._close(a, b)

    def _close(self, a: np.ndarray, b: np.ndarray):
        """The pairs (a, b) of sorted positions within the distance, as positions in `codes`."""
        close = np.flatnonzero(np.bitwise_count(np.take(self._ordered, a) ^ np.take(self._ordered, b)) <= self._max)
        if len(close):
            yield self._order[a[close]], self._order[b[close]]


def _flip_masks(bits: int, radius: int):
    for flipped in range(radius + 1):
        for positions in combinations(range(bits), flipped):
            yield sum(1 << p for p in positions)


def _bucket_members(hits: np.ndarray, starts: np.ndarray, counts: np.ndarray):
    """(hit, position in its bucket) pairs in blocks of about BLOCK pairs."""
    ends = np.cumsum(counts)
    begin = 0
    while begin < len(hits):
        stop = max(begin + 1, int(np.searchsorted(ends, (ends[begin - 1] if begin else 0) + BLOCK, "right")))
        c = counts[begin:stop]
        offsets = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        yield np.repeat(hits[begin:stop], c), np.repeat(starts[begin:stop], c) + offsets
        begin = stop


def _brute_pairs(codes: np.ndarray, max_distance: int):
    """Every pair compared, in row blocks of about BLOCK pairs."""
    rows = max(1, BLOCK // len(codes))
    for start in range(0, len(codes), rows):
        block = codes[start : start + rows]
        a, b = np.nonzero(np.bitwise_count(block[:, None] ^ codes[None, :]) <= max_distance)
        a += start
        keep = a < b
        yield a[keep], b[keep]


# --- embeddings ----------------------------------------------------------------------------------


def embedding_links(x: np.ndarray, threshold: float, k: int, links: Links) -> None:
    """Link each vector to its (at most k + 1 per list) most similar at >= threshold; identical rows first."""
    rows = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    links.add(np.arange(len(x)), first[inverse])
    if len(first) < 2:
        return
    first = np.sort(first)
    distinct = x[first]
    for a, b in _inverted_file_pairs(distinct, threshold, k):
        links.add(first[a], first[b])


def _inverted_file_pairs(x: np.ndarray, threshold: float, k: int):
    """Blocks (a, b) of linked rows: each row against the members of the lists it probes."""
    lists, probes = _assign_lists(x)
    by_list = _grouped(probes[:, 0], lists)
    probing = _grouped(probes.ravel(), lists)
    for members, slots in zip(by_list, probing):
        if len(members) and len(slots):
            yield from _join(x, slots // probes.shape[1], members, threshold, k)


def _assign_lists(x: np.ndarray) -> tuple[int, np.ndarray]:
    """(lists, each row's NPROBE nearest lists, its own first): one list (an exact search) when there
    would be no more lists than probes."""
    lists = len(x) // LIST_SIZE
    if lists <= NPROBE:
        return 1, np.zeros((len(x), 1), dtype=np.int64)
    sample = np.random.default_rng(SEED).choice(len(x), min(len(x), TRAIN_PER_LIST * lists), replace=False)
    kmeans = faiss.Kmeans(
        x.shape[1],
        lists,
        niter=KMEANS_ITERATIONS,
        seed=SEED,
        spherical=True,
        max_points_per_centroid=TRAIN_PER_LIST + 1,
    )
    kmeans.train(np.ascontiguousarray(x[np.sort(sample)], dtype=np.float32))
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(kmeans.centroids)
    step = max(1, BLOCK // lists)
    probes = np.concatenate(
        [
            index.search(np.ascontiguousarray(x[s : s + step], dtype=np.float32), NPROBE)[1]
            for s in range(0, len(x), step)
        ]
    )
    return lists, probes


def _grouped(labels: np.ndarray, groups: int) -> list[np.ndarray]:
    """The positions holding each label 0..groups-1, in order."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(groups)]


def _join(x: np.ndarray, queries: np.ndarray, members: np.ndarray, threshold: float, k: int):
    """(query, member) links of one list, in row blocks of about BLOCK similarities."""
    base = np.ascontiguousarray(x[members], dtype=np.float32).T
    rows = max(1, BLOCK // len(members))
    for start in range(0, len(queries), rows):
        block = queries[start : start + rows]
        similarity = np.ascontiguousarray(x[block], dtype=np.float32) @ base
        r, c = _top_above(similarity, np.float32(threshold), k + 1)
        a, b = block[r], members[c]
        yield a[a != b], b[a != b]


def _top_above(similarity: np.ndarray, threshold: np.float32, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's `keep` highest entries that are >= threshold."""
    above = similarity >= threshold
    crowded = np.flatnonzero(above.sum(axis=1) > keep)
    if len(crowded):
        top = np.argpartition(-similarity[crowded], keep - 1, axis=1)[:, :keep]
        above[crowded] = False
        above[crowded[:, None], top] = True
    return np.nonzero(above)


# --- union-find ----------------------------------------------------------------------------------


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


def _components(roots: np.ndarray) -> list[np.ndarray]:
    """The positions of each component of two or more nodes."""
    sizes = np.bincount(roots, minlength=len(roots))
    members = np.flatnonzero(sizes[roots] >= 2)
    members = members[np.argsort(roots[members], kind="stable")]
    bounds = np.flatnonzero(np.diff(roots[members])) + 1
    return np.split(members, bounds) if len(members) else []
