"""Thread counts for torch, faiss and BLAS, set from the work actually running.

Each library sizes its thread pool to the machine, as if it ran alone. A scan's worker processes
keep the cores busy decoding while the main process embeds each batch; with torch's default
threads there, the threads of both contend: measured on 2 cores, a batch of 16 through the tiny
embedder took 313 ms with 2 threads against 40 ms with 1 (671 against 120 ms beside two busy
workers). Small problems lose the same way: one faiss k-NN of 100 points took 13-30 ms with
2 threads, 1.2-1.4 ms with 1 and 0.2-0.45 ms in plain numpy.

So the rule, kept here for every caller: the processes computing at once times the threads each
uses stay within the cores (`per_process`); the main process counts as busy its child processes
running at that moment (the scan's workers, decoding; not those waiting for a batch) (`main_share`);
and problems below `SMALL_PROBLEM` multiply-adds run in numpy on one thread (`small`). `limited`
sets torch's, faiss's and the BLAS libraries' pools for a block of work, touching only libraries
already imported, and puts them back after it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

SMALL_PROBLEM = 2_000_000  # multiply-adds below which numpy on one thread wins (a k-NN of 200 points in d=50)


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def per_process(processes: int) -> int:
    """Threads each of `processes` processes computing at once may use: processes x threads <= cores."""
    return max(1, cores() // max(1, processes))


def busy_children() -> int:
    """This process's child processes (a scan's decoding workers) running now; a worker waiting for
    its next batch does not count. Without /proc (not Linux) every live child counts."""
    children = multiprocessing.active_children()
    running = 0
    for child in children:
        try:
            with open(f"/proc/{child.pid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return len(children)
        running += state == b"R"
    return running


def main_share() -> int:
    """Threads for this process's computing while its child processes work beside it."""
    return per_process(1 + busy_children())


def small(multiply_adds: float) -> bool:
    """Whether a problem of this size runs faster single-threaded in numpy than through a thread pool."""
    return multiply_adds < SMALL_PROBLEM


@contextmanager
def limited(threads: int, *, torch: bool = True, faiss: bool = True, blas: bool = True) -> Iterator[int]:
    """Run the block with at most `threads` threads in torch, faiss (OpenMP) and BLAS; restored after.

    Only libraries this process has already imported are touched (nothing is imported for it).
    """
    threads = max(1, int(threads))
    with ExitStack() as stack:
        if torch and "torch" in sys.modules:
            stack.enter_context(_torch_threads(threads))
        if faiss and "faiss" in sys.modules:
            stack.enter_context(_faiss_threads(threads))
        if blas:
            stack.enter_context(_blas_threads(threads))
        yield threads


@contextmanager
def _torch_threads(threads: int):
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def _faiss_threads(threads: int):
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@contextmanager
def _blas_threads(threads: int):
    """BLAS pools (OpenBLAS, MKL) through threadpoolctl; OpenMP is left to torch and faiss above."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
