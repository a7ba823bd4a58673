"""Near-duplicate clusters within one scan: time and memory as the scan grows, when embeddings are close.

`near_duplicate_clusters` links each image to those of its k nearest neighbours above the threshold
(union-find), so memory stays O(n k) even when every pair is a near-duplicate; linking every pair
above the threshold took 0.38 s / 0.27 GB at 2,000 such images, 6.9 s / 2.2 GB at 8,000 and
30.8 s / 8.3 GB at 16,000. Here: n near-identical CLIP-sized (dim 512) unit vectors, the median
of --repeats runs (min-max in brackets), and the peak of memory that Python and numpy allocate
during the call (tracemalloc; faiss's own search buffers are bounded by its query chunks).

    python benchmarks/cluster_scaling.py [--sizes 2000,8000,16000,20000] [--dim 512] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

from audit.bank.clusters import DEFAULT_K, near_duplicate_clusters


def close_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """n unit vectors all within cosine ~0.99 of one another."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(dim) + 0.05 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def measure(n: int, dim: int, repeats: int) -> tuple[list[float], int, int]:
    x, ids = close_vectors(n, dim), [f"img{i:06d}" for i in range(n)]
    times, peak = [], 0
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        found = near_duplicate_clusters(x, ids)
        times.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return times, peak, len(found[0]) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,8000,16000,20000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"near_duplicate_clusters, k = {DEFAULT_K}, dim {args.dim}, threshold 0.95, median of {args.repeats}")
    print(f"{'images':>8} {'seconds (min-max)':>22} {'peak MB':>8} {'largest cluster':>16}")
    for n in (int(s) for s in args.sizes.split(",")):
        times, peak, largest = measure(n, args.dim, args.repeats)
        spread = f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})"
        print(f"{n:>8} {spread:>22} {peak / 2**20:>8.1f} {largest:>16}", flush=True)


if __name__ == "__main__":
    main()
