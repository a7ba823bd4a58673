"""Signals that end a scan. Under `interruptible()`, SIGTERM and SIGHUP raise `Interrupted` in the
main thread, as Ctrl-C raises KeyboardInterrupt, so a scan unwinds the same way for all three: the
worker processes are ended (pool.py), the rows already finished stay in the output folder, and the
command prints how to continue (`resume_command`). A second signal while the scan unwinds is ignored.
Worker processes also end when their parent dies without unwinding (kill -9): `die_with_parent`.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from contextlib import contextmanager

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)
_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """A signal asked the scan to stop; `signum` is the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextmanager
def interruptible(signums: tuple[int, ...] = SIGNALS):
    """Within the block, `signums` raise `Interrupted` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for s in signums:  # the scan is already unwinding: later signals change nothing
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The shell's status for a process ended by the signal: 128 + its number (SIGINT for Ctrl-C)."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def resume_command(argv: list[str] | None = None) -> str:
    """The `audit` command line that continues the interrupted scan: the same arguments, `--resume`
    instead of `--overwrite`."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--overwrite"]
    return shlex.join(["audit", *args, *([] if "--resume" in args else ["--resume"])])


def die_with_parent(parent: int) -> None:
    """Ask Linux to end this process when its parent ends (a kill -9 of the scan leaves no worker
    behind); elsewhere a no-op. Ends at once if the parent is already gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)
