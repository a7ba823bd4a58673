"""The decoded-pixel budget: how many pixels the scan's processes may hold decoded at once.

Each worker takes pixels from the budget (by the image's header) before decoding an image and gives
them back once its group of images has been through the detectors. A worker that holds pixels never
waits: when the next image does not fit, it finishes the images it holds first. Only a worker that
holds nothing waits, until the image fits, or until nobody holds anything (an image larger than the
budget but under the pixel limit then runs alone). The first worker to wait claims the pixels it
waits for, so a large image is not starved by a stream of small ones. The budget is shared through a
multiprocessing array; a pool that breaks takes its budget with it (the next pool starts afresh).
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext

PIXELS_PER_WORKER = 25_000_000  # a scan's shared budget is at least this many pixels per worker
WAIT = 0.005  # seconds between looks at the budget while waiting
USED, CLAIM, CLAIMANT = 0, 1, 2  # the shared array's fields


def scan_budget(pixel_limit: int, workers: int) -> int:
    """Decoded pixels a scan's workers may hold together: the pixel limit (one image of the largest
    size allowed), or more with many workers so that each still holds a batch of common photos."""
    return max(pixel_limit, PIXELS_PER_WORKER * max(1, workers))


class PixelBudget:
    """`take` before decoding (blocks), `try_take` when already holding some (never blocks), `give` after."""

    def __init__(self, total: int, state=None):
        self.total = total
        self._state = state if state is not None else [0, 0, 0]
        self._lock = state.get_lock() if state is not None else nullcontext()

    @classmethod
    def shared(cls, ctx, total: int) -> PixelBudget:
        """A budget the workers of one pool share (ctx: the pool's multiprocessing context)."""
        return cls(total, ctx.Array("q", 3))

    def try_take(self, pixels: int) -> bool:
        with self._lock:
            return self._take_locked(pixels, claim=False)

    def take(self, pixels: int) -> None:
        while True:
            with self._lock:
                if self._take_locked(pixels, claim=True):
                    return
            time.sleep(WAIT)

    def give(self, pixels: int) -> None:
        with self._lock:
            self._state[USED] = max(0, self._state[USED] - pixels)

    def _take_locked(self, pixels: int, claim: bool) -> bool:
        state, me = self._state, os.getpid()
        mine = state[CLAIMANT] == me and state[CLAIM] > 0
        reserved = 0 if mine else state[CLAIM]
        if (state[USED] == 0 and reserved == 0) or state[USED] + pixels + reserved <= self.total:
            state[USED] += pixels
            if mine:
                state[CLAIM], state[CLAIMANT] = 0, 0
            return True
        if claim and state[CLAIM] == 0:
            state[CLAIM], state[CLAIMANT] = pixels, me
        return False
