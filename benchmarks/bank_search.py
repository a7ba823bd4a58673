"""Bank search: queries/s and recall@1 of exact search (Flat) against HNSW32, IVF-PQ and IVF-SQ8,
measured side by side in one run, with the bank's own index building, training and tuning.

    python benchmarks/bank_search.py [--sizes 100000,1000000] [--queries 1000] [--noise 0.5]
                                     [--target-recall 0.95] [--hnsw-max 200000]

The bank holds random unit vectors (d=512): the hardest case for approximate search, which
has no cluster structure to exploit. Queries are bank vectors moved by Gaussian noise of norm
--noise (0.5: cosine ~0.89 to their source), so recall@1 says whether the near-duplicate is
found; the ground truth is the exact search. For HNSW and IVF, efSearch / nprobe are swept
upward and the first value reaching --target-recall is reported (on the same queries).
"sim err" is the mean |approximate - exact| cosine of the top-1 where both agree on it: the code's
distortion of similarities, which the detector's thresholds assume to be ~0.
HNSW32 is skipped above --hnsw-max vectors: its build takes ~6 minutes for 10^6 on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from audit.bank.index import build_index, train_index, tune_index

EF_SEARCH = (16, 32, 64, 128, 256, 512)
NPROBE = (1, 2, 4, 8, 16, 32, 64, 128, 256)
COLUMNS = ("vectors", "index", "param", "build s", "queries/s", "vs exact", "recall@1", "sim err", "bytes/vector")
KNOB_NAMES = {"ef_search": "efSearch", "nprobe": "nprobe"}
console = Console(stderr=True)


def unit_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def near_copies(database: np.ndarray, count: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """`count` database vectors (chosen at random) plus noise of norm ~`noise`, renormalised."""
    picked = database[rng.choice(len(database), count, replace=False)]
    moved = picked + rng.standard_normal(picked.shape, dtype=np.float32) * (noise / math.sqrt(database.shape[1]))
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def nlist_for(n: int) -> int:
    """IVF list count: the power of two nearest 4 * sqrt(n) (1024 for 10^5, 4096 for 10^6)."""
    return 2 ** round(math.log2(4 * math.sqrt(n)))


def built(factory: str, database: np.ndarray) -> tuple[faiss.Index, float]:
    """(index holding the database, seconds to train and fill it)."""
    start = time.perf_counter()
    index = build_index(database.shape[1], factory)
    if not index.is_trained:
        train_index(index, database)
    index.add(database)
    return index, time.perf_counter() - start


def timed_search(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(top-1 similarities, top-1 ids, seconds) of one batched search, after a small warm-up search."""
    index.search(queries[:10], 1)
    start = time.perf_counter()
    similarities, ids = index.search(queries, 1)
    return similarities[:, 0], ids[:, 0], time.perf_counter() - start


def tuned_search(index, queries, truth, knob: str, values, target: float):
    """Sweep a search knob upward; (value, similarities, ids, seconds) of the first reaching `target`
    recall@1, else of the last value."""
    for value in values:
        tune_index(index, **{knob: value})
        similarities, ids, seconds = timed_search(index, queries)
        if (ids == truth).mean() >= target:
            break
    return value, similarities, ids, seconds


def methods(n: int, hnsw_max: int) -> list[tuple[str, str | None, tuple[int, ...]]]:
    """(factory, search knob, knob values) to compare with exact search at bank size n."""
    nlist = nlist_for(n)
    listed = [(f"IVF{nlist},PQ32", "nprobe", NPROBE), (f"IVF{nlist},SQ8", "nprobe", NPROBE)]
    return ([("HNSW32", "ef_search", EF_SEARCH)] if n <= hnsw_max else []) + listed


def bench_size(n: int, args, rng: np.random.Generator, table: Table) -> None:
    console.log(f"{n:,} vectors: generating")
    database = unit_vectors(n, args.dim, rng)
    queries = near_copies(database, args.queries, args.noise, rng)
    console.log(f"{n:,} vectors: Flat")
    exact, build_s = built("Flat", database)
    truth_similarities, truth, exact_s = timed_search(exact, queries)
    table.add_row(
        f"{n:,}",
        "Flat (exact)",
        "-",
        f"{build_s:.1f}",
        f"{args.queries / exact_s:,.0f}",
        "1.0x",
        "1.000",
        "0",
        f"{bytes_per_vector(exact, n):,.0f}",
    )
    del exact
    for factory, knob, values in methods(n, args.hnsw_max):
        console.log(f"{n:,} vectors: {factory}")
        index, build_s = built(factory, database)
        value, similarities, ids, seconds = tuned_search(index, queries, truth, knob, values, args.target_recall)
        table.add_row(
            f"{n:,}",
            factory,
            f"{KNOB_NAMES[knob]}={value}",
            f"{build_s:.1f}",
            f"{args.queries / seconds:,.0f}",
            f"{exact_s / seconds:.1f}x",
            f"{(ids == truth).mean():.3f}",
            f"{similarity_error(similarities, truth_similarities, ids == truth):.4f}",
            f"{bytes_per_vector(index, n):,.0f}",
        )
        del index
    if n < max(args.sizes):
        table.add_section()


def similarity_error(similarities: np.ndarray, exact: np.ndarray, hits: np.ndarray) -> float:
    return float(np.abs(similarities[hits] - exact[hits]).mean()) if hits.any() else float("nan")


def bytes_per_vector(index: faiss.Index, n: int) -> float:
    return faiss.serialize_index(index).nbytes / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(float(v)) for v in s.split(",")],
        default=[100_000, 1_000_000],
        help="comma-separated bank sizes (default 100000,1000000; 1e6 works)",
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to make a query")
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest size at which HNSW32 is built")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    table = Table(
        title=f"bank search, d={args.dim}, {args.queries} queries at noise {args.noise} "
        f"(cosine ~{1 / math.sqrt(1 + args.noise**2):.2f}), {os.cpu_count()} CPUs, "
        f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads)"
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("index", "param") else "right")
    start = time.perf_counter()
    for n in args.sizes:
        bench_size(n, args, rng, table)
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    console.log(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
