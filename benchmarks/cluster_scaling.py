"""Near-duplicate clusters within one scan: CPU as the scan grows, exactness and recall, and the
resume journal's share of the scanning process.

Data: pHashes are random 64-bit codes of which 10 % are copies of others with 0-8 bits flipped and
1 % exact copies; embeddings are dim-512 unit vectors in loose groups of about 500 (cosine ~0.5
within a group, like image embeddings), 10 % of them near-copies of others (cosine 0.95-0.99).
Each size is timed as the median of --repeats interleaved runs (CPU seconds of this process,
time.process_time, all threads), for `near_duplicate_clusters` (the whole set at once) and for the
method it replaced, an exact faiss k-NN (k = 32) over the whole set, where that is affordable
(--brute-max, --brute-max-phash). Printed per size: both CPU times, the growth of CPU against the previous size, and
  - pHashes: whether the clusters are identical to the exact k-NN's (the data hold no image with
    more than k copies, so the exact k-NN's clusters are those of all pairs);
  - embeddings: recall, the share of the exact k-NN's links (neighbours at cosine >= 0.95) that the
    inverted-list search also links, computed for --recall-queries random images against the whole
    set (all images where the exact search runs), and whether the clusters are identical.
Then the journal row (benchmarks/journal_share.py): its share of the main process's CPU when it
fsyncs every batch and when it commits in groups, on a scan of --journal-images small PNGs.

    python benchmarks/cluster_scaling.py [--sizes 10000,40000,160000] [--repeats 3] [--brute-max 40000]
        [--brute-max-phash 160000] [--journal-images 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import journal_share  # noqa: E402

import audit.threads as threads  # noqa: E402
from audit.bank.clusters import DEFAULT_K, Links, near_duplicate_groups  # noqa: E402

THRESHOLD = 0.95
DIM = 512


def phash_data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    near, exact = n // 10, n // 100
    targets = rng.choice(n, near + exact, replace=False)
    flips = np.zeros(near, dtype=np.uint64)
    bits = rng.random((near, 64)).argsort(axis=1)
    count = rng.integers(0, 9, near)
    for j in range(8):
        flips[count > j] |= np.left_shift(np.uint64(1), bits[count > j, j].astype(np.uint64))
    codes[targets[:near]] = codes[rng.integers(0, n, near)] ^ flips
    codes[targets[near:]] = codes[rng.integers(0, n, exact)]
    return codes


def embedding_data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 500), DIM)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = n // 10
    targets = rng.choice(n, copies, replace=False)
    noise = rng.uniform(0.1, 0.33, (copies, 1)).astype(np.float32) / np.sqrt(DIM)
    x[targets] = x[rng.integers(0, n, copies)] + noise * rng.standard_normal((copies, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def knn_links(index, queries: np.ndarray, rows: np.ndarray, keep) -> tuple[np.ndarray, np.ndarray]:
    """The exact k-NN's links (query row, neighbour) for `queries` (rows `rows` of the set)."""
    first, second = [], []
    for start in range(0, len(queries), 4096):
        scores, found = index.search(queries[start : start + 4096], DEFAULT_K + 1)
        ok = keep(scores) & (found >= 0) & (found != rows[start : start + len(found), None])
        first.append(np.repeat(rows[start : start + len(found)], found.shape[1])[ok.ravel()])
        second.append(found[ok])
    return np.concatenate(first), np.concatenate(second)


def exact_groups(kind: str, data: np.ndarray) -> list[np.ndarray]:
    """The method replaced: an exact k-NN over the whole set (faiss Flat), then union-find, with the
    threads it ran with."""
    with threads.limited(threads.main_share(), torch=False):
        return _exact_groups(kind, data)


def _exact_groups(kind: str, data: np.ndarray) -> list[np.ndarray]:
    if kind == "phash":
        index = faiss.IndexBinaryFlat(64)
        codes = data.astype(">u8").view(np.uint8).reshape(-1, 8)
        index.add(codes)
        first, second = knn_links(index, codes, np.arange(len(data)), lambda d: d <= 8)
    else:
        index = faiss.IndexFlatIP(DIM)
        index.add(data)
        first, second = knn_links(index, data, np.arange(len(data)), lambda s: s >= np.float32(THRESHOLD))
    links = Links(len(data))
    links.add(first, second)
    roots = links.roots()
    sizes = np.bincount(roots, minlength=len(roots))
    members = np.flatnonzero(sizes[roots] >= 2)
    members = members[np.argsort(roots[members], kind="stable")]
    return np.split(members, np.flatnonzero(np.diff(roots[members])) + 1) if len(members) else []


def new_groups(kind: str, data: np.ndarray) -> list[np.ndarray]:
    if kind == "phash":
        return near_duplicate_groups(None, len(data), phashes=data)
    return near_duplicate_groups(data, len(data), threshold=THRESHOLD)


def canonical(groups: list[np.ndarray]) -> list[tuple[int, ...]]:
    return sorted(tuple(sorted(g.tolist())) for g in groups)


def recall(data: np.ndarray, groups: list[np.ndarray], queries: int, seed: int = 1) -> float:
    """Share of the exact k-NN's links, from `queries` random rows, whose ends share a cluster."""
    rows = np.sort(np.random.default_rng(seed).choice(len(data), min(queries, len(data)), replace=False))
    index = faiss.IndexFlatIP(DIM)
    index.add(data)
    first, second = knn_links(index, data[rows], rows, lambda s: s >= np.float32(THRESHOLD))
    cluster = np.full(len(data), -1)
    for label, group in enumerate(groups):
        cluster[group] = label
    return float(np.mean((cluster[first] == cluster[second]) & (cluster[first] >= 0))) if len(first) else 1.0


def cpu(function, *args):
    start = time.process_time()
    result = function(*args)
    return time.process_time() - start, result


def measure(kind: str, sizes: list[int], repeats: int, brute_max: int, recall_queries: int) -> list[dict]:
    data = {n: (phash_data(n) if kind == "phash" else embedding_data(n)) for n in sizes}
    times = {n: {"new": [], "exact": []} for n in sizes}
    found: dict[int, dict] = {n: {} for n in sizes}
    for _ in range(repeats):  # interleaved: every size and method once per round
        for n in sizes:
            seconds, found[n]["new"] = cpu(new_groups, kind, data[n])
            times[n]["new"].append(seconds)
            if n <= brute_max:
                seconds, found[n]["exact"] = cpu(exact_groups, kind, data[n])
                times[n]["exact"].append(seconds)
    results = []
    for n in sizes:
        exact = found[n].get("exact")
        row = {
            "n": n,
            "new": statistics.median(times[n]["new"]),
            "exact": statistics.median(times[n]["exact"]) if exact is not None else None,
            "clusters": len(found[n]["new"]),
            "identical": None if exact is None else canonical(found[n]["new"]) == canonical(exact),
        }
        if kind == "embedding":
            row["recall"] = recall(data[n], found[n]["new"], n if n <= brute_max else recall_queries)
        results.append(row)
    return results


def print_rows(kind: str, results: list[dict]) -> None:
    print(f"\n{kind}: near_duplicate_clusters over the whole set vs exact k-NN (k = {DEFAULT_K}), CPU s")
    header = f"{'images':>8} {'new':>8} {'x prev':>7} {'exact':>8} {'x prev':>7} {'clusters':>9} {'identical':>10}"
    print(header + (f" {'recall':>7}" if kind == "embedding" else ""))
    previous = None
    for row in results:
        grow = f"{row['new'] / previous['new']:.2f}" if previous else "-"
        exact = f"{row['exact']:.3f}" if row["exact"] is not None else "-"
        exact_grow = (
            f"{row['exact'] / previous['exact']:.2f}"
            if previous and row["exact"] is not None and previous["exact"] is not None
            else "-"
        )
        same = "-" if row["identical"] is None else ("yes" if row["identical"] else "no")
        line = f"{row['n']:>8} {row['new']:>8.3f} {grow:>7} {exact:>8} {exact_grow:>7} {row['clusters']:>9} {same:>10}"
        print(line + (f" {row['recall']:>7.4f}" if kind == "embedding" else ""), flush=True)
        previous = row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,40000,160000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--brute-max", type=int, default=40000, help="largest size also run with exact k-NN (embeddings)"
    )
    parser.add_argument("--brute-max-phash", type=int, default=160000, help="the same for pHashes")
    parser.add_argument(
        "--recall-queries", type=int, default=2000, help="images whose links give the recall above --brute-max"
    )
    parser.add_argument("--kinds", default="phash,embedding")
    parser.add_argument("--journal-images", type=int, default=10000, help="0: no journal row")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"median of {args.repeats} interleaved runs; threshold {THRESHOLD}, pHash distance 8, dim {DIM}")
    for kind in args.kinds.split(","):
        brute_max = args.brute_max_phash if kind == "phash" else args.brute_max
        print_rows(kind, measure(kind, sizes, args.repeats, brute_max, args.recall_queries))
    if args.journal_images:
        print(f"\njournal of a {args.journal_images}-image scan (32x32 PNGs, 2 workers)")
        for line in journal_share.rows(journal_share.measure(args.journal_images, args.repeats)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
