"""Torch's CPU thread count for a block of work.

The networks here are small: a second thread gains little, and when another process keeps the
cores busy, torch's spinning threads slow training down many times over (measured on 2 cores:
a classifier that trains in 2.6 s alone took 57 s beside another job; 20 diffusion steps about 3 s
against 83 s). So small-network work runs single-threaded unless told otherwise. The thread
settings of every library live in audit/threads.py; this is its torch-only form.
"""

from __future__ import annotations

from contextlib import contextmanager

import audit.threads as threads


@contextmanager
def torch_threads(count: int = 1):
    import torch  # noqa: F401  (imported, so `limited` sets its threads)

    with threads.limited(count, faiss=False, blas=False):
        yield
