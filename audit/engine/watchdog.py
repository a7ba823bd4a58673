"""The time budget of what a worker process is working on. Each worker owns a slot in arrays it
shares with the parent: the seq of the item (or the first item of the batch) it is on, and the
phase. A watchdog thread ends the worker (exit code 3) when the budget runs out, after marking its
slot, so the parent (pool.py) knows which item it was, makes it an error row and replaces the worker."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

IDLE, ITEM, BATCH = 0, 1, 2  # phases: between items, decoding one item, the detectors on a whole batch
TICK = 0.05  # seconds between the watchdog's looks at the clock


@dataclass
class Slots:
    """Per worker slot, shared between the parent and its workers (multiprocessing arrays)."""

    counter: object  # Value: slots handed out so far
    seq: object  # Array: the seq the worker is on
    phase: object  # Array: IDLE, ITEM or BATCH
    timed_out: object  # Array: 1 when the worker's watchdog ended it

    @classmethod
    def create(cls, ctx, workers: int) -> Slots:
        return cls(ctx.Value("i", 0), ctx.Array("q", workers), ctx.Array("b", workers), ctx.Array("b", workers))

    def busy(self) -> list[tuple[int, int, bool]]:
        """(seq, phase, timed out) of every slot that was working when read."""
        return [
            (self.seq[i], self.phase[i], bool(self.timed_out[i]))
            for i in range(len(self.phase))
            if self.phase[i] != IDLE
        ]


class Watchdog:
    """Worker side: `with watchdog.watching(seq, ITEM, seconds):` around each piece of work."""

    def __init__(self, slots: Slots):
        with slots.counter.get_lock():
            self.slot = slots.counter.value % len(slots.phase)
            slots.counter.value += 1
        self.slots = slots
        self._deadline: float | None = None
        threading.Thread(target=self._watch, name="item-watchdog", daemon=True).start()

    @contextmanager
    def watching(self, seq: int, phase: int, seconds: float):
        self.slots.seq[self.slot], self.slots.phase[self.slot] = seq, phase
        self._deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self._deadline = None
            self.slots.phase[self.slot] = IDLE

    def _watch(self) -> None:
        while True:
            time.sleep(TICK)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                self.slots.timed_out[self.slot] = 1
                os._exit(3)  # the only way out of a decoder stuck in C code
