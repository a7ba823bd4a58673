"""Torch's CPU thread count for a block of work.

The networks here are small: a second thread gains little, and when another process keeps the
cores busy, torch's spinning threads slow training down many times over (measured on 2 cores:
a classifier that trains in 2.6 s alone took 57 s beside another job; 20 diffusion steps about 3 s
against 83 s). So small-network work runs single-threaded unless told otherwise.
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def torch_threads(count: int = 1):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
