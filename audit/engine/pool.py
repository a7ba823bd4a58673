"""The local engine's worker processes, kept alive through whatever one item does to its worker.

A worker stuck on an item past the time budget is ended by its watchdog (watchdog.py); a worker can
also die on its own (a crash in a C decoder, the out-of-memory killer). Either way the process pool
breaks. The items the workers were on are then known from their slots: a timed-out item becomes an
error row, the others on which a worker was busy are run again one at a time in a fresh worker (so
a crash is pinned on its item), and every other unfinished item is resubmitted to a new pool.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context

from audit.engine.batch import error_row, init_worker, journaled_batch
from audit.engine.pixels import PixelBudget, scan_budget
from audit.engine.watchdog import ITEM, Slots

STARTUP_FAILURE = "the scan's worker processes could not start; workers=0 scans in this process"
Batch = list  # [(seq, ImageRecord), ...]
Finish = Callable[[tuple[list[dict], dict, bytes | None]], None]  # journaled_batch's result


class WorkersFailed(RuntimeError):
    """The worker processes could not start at all (nothing to do with any item)."""


@dataclass
class Breakage:
    """What a broken pool left: items to fail, items to rerun alone, batches to resubmit."""

    timed_out: list = field(default_factory=list)
    suspects: list = field(default_factory=list)
    unfinished: list = field(default_factory=list)


def run_in_workers(
    batches: Iterator[Batch], finish: Finish, workers: int, init_args: tuple, item_timeout: float | None
) -> None:
    """Process every batch in `workers` processes and hand each result to `finish`."""
    init_worker(*init_args)  # in this process too, to render the rows of items that stop a worker
    retry: deque[Batch] = deque()
    while (broken := _run_pool(batches, retry, finish, workers, init_args, item_timeout)) is not None:
        _fail(broken.timed_out, _timeout_reason(item_timeout), finish)
        for item in broken.suspects:
            _run_alone(item, finish, init_args, item_timeout)
        retry.extend(broken.unfinished)


def _run_pool(
    batches: Iterator[Batch], retry: deque, finish: Finish, workers: int, init_args: tuple, item_timeout: float | None
) -> Breakage | None:
    """Run batches (retries first) until all are done (None) or the pool breaks (what it left)."""
    ctx = get_context("spawn")  # no fork: parents may hold threads (Arrow, HF datasets, torch)
    slots = Slots.create(ctx, workers)
    budget = PixelBudget.shared(ctx, scan_budget(init_args[0].pixel_limit, workers))
    pending: dict = {}
    with (
        _main_module_hidden(),
        ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(*init_args, slots, item_timeout, budget)
        ) as pool,
        _ended_at_once_on_error(pool),
    ):

        def fill() -> bool:
            """Submit up to 2 batches per worker; False when the pool turns out to be broken."""
            while len(pending) < 2 * workers and (batch := retry.popleft() if retry else next(batches, None)):
                try:
                    pending[pool.submit(journaled_batch, batch)] = batch
                except BrokenProcessPool:
                    retry.appendleft(batch)
                    return False
            return True

        intact = fill()
        while pending and intact:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            intact = not any(isinstance(f.exception(), BrokenProcessPool) for f in done)
            for future in done if intact else ():
                finish(future.result())
                del pending[future]
            intact = intact and fill()
        if intact:
            return None
        if not slots.counter.value:
            raise WorkersFailed(STARTUP_FAILURE)
        return _triage(slots, _finish_what_finished(pending, finish))


@contextmanager
def _ended_at_once_on_error(pool: ProcessPoolExecutor):
    """On any exception out of the pool's block (an interrupt included: Ctrl-C, SIGTERM, SIGHUP), end
    the workers now instead of waiting for the batches they are on, so none outlives the scan."""
    try:
        yield
    except BaseException:
        end_workers(pool)
        raise


def end_workers(pool: ProcessPoolExecutor, grace: float = 2.0) -> None:
    """Cancel what has not started, end the workers (SIGTERM, then SIGKILL after `grace` seconds)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


@contextmanager
def _main_module_hidden():
    """Workers run only audit's own functions, so they need not import the caller's __main__; spawn
    would otherwise run it again in every worker (an unguarded script, stdin or a notebook's code,
    which then starts workers of its own and breaks the pool)."""
    main = sys.modules.get("__main__")
    saved = {key: getattr(main, key) for key in ("__file__", "__spec__") if hasattr(main, key)}
    for key in saved:
        setattr(main, key, None) if key == "__spec__" else delattr(main, key)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


def _finish_what_finished(pending: dict, finish: Finish) -> list[Batch]:
    """After a break: hand on the results that arrived, return the batches that did not finish."""
    wait(pending)  # a broken pool resolves every future at once
    for future in pending:
        if future.exception() is None:
            finish(future.result())
    return [batch for future, batch in pending.items() if future.exception() is not None]


def _triage(slots: Slots, in_flight: list[Batch]) -> Breakage:
    """Sort the unfinished items of a broken pool by what their workers' slots say."""
    items = {seq: (seq, record) for batch in in_flight for seq, record in batch}
    batch_of = {seq: batch for batch in in_flight for seq, _ in batch}
    broken = Breakage()
    for seq, phase, timed_out in slots.busy():
        if seq not in items:
            continue
        group = [seq] if phase == ITEM else [s for s, _ in batch_of[seq]]
        if timed_out and len(group) == 1:
            broken.timed_out.append(items.pop(seq))
        else:  # a worker on this item or batch was ended: run them alone to find out which, if any
            broken.suspects += [items.pop(s) for s in group if s in items]
    if not broken.timed_out and not broken.suspects:  # died between items: every unfinished one is suspect
        broken.suspects, items = list(items.values()), {}
    broken.unfinished = [[item for item in batch if item[0] in items] for batch in in_flight]
    broken.unfinished = [batch for batch in broken.unfinished if batch]
    return broken


def _run_alone(item: tuple, finish: Finish, init_args: tuple, item_timeout: float | None) -> None:
    """One item in a fresh worker: its row, or an error row when it stops that worker too."""
    broken = _run_pool(iter([[item]]), deque(), finish, 1, init_args, item_timeout)
    if broken is None:
        return
    if broken.timed_out:
        _fail(broken.timed_out, _timeout_reason(item_timeout), finish)
    else:
        _fail([item], "internal error: the worker process died on this item (a crash or out of memory)", finish)


def _timeout_reason(item_timeout: float | None) -> str:
    return f"took longer than the time budget ({item_timeout or 0:g} s, --item-timeout)"


def _fail(items: list, reason: str, finish: Finish) -> None:
    for seq, record in items:
        finish(([error_row(seq, record, reason)], {}, None))
