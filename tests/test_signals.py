"""SIGTERM and SIGHUP end a running `audit scan` whole: its worker processes and multiprocessing's
resource tracker go with the main process (none holds the caller's stdout pipe), the output folder
stays resumable, and the message names the command that continues the scan."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from audit.engine.journal import JOURNAL_NAME

IMAGES = 120


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded) in the process group `pgid`, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def journal_rows(out: Path) -> int:
    try:
        return (out / JOURNAL_NAME).read_bytes().count(b"\n") - 1
    except OSError:
        return 0


def images(folder: Path) -> None:
    """IMAGES copies of one noise PNG (each takes the workers a few milliseconds)."""
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (384, 384, 3), dtype=np.uint8)).save(folder / "0000.png")
    data = (folder / "0000.png").read_bytes()
    for i in range(1, IMAGES):
        (folder / f"{i:04d}.png").write_bytes(data)


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)])
def test_a_signal_ends_the_whole_scan_and_leaves_it_resumable(tmp_path, signum):
    images(tmp_path / "data")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "audit.cli",
        "scan",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--workers",
        "2",
        "--batch-size",
        "4",
        "--quiet",
    ]
    scan = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    stdout_closed = threading.Event()
    threading.Thread(target=lambda: (scan.stdout.read(), stdout_closed.set()), daemon=True).start()
    deadline = time.monotonic() + 60
    while journal_rows(out) < 8 and scan.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the workers are up and have finished some batches
    assert scan.poll() is None, "the scan ended before it could be interrupted"
    assert len(group_members(scan.pid)) >= 3  # the command, its workers, the resource tracker

    sent = time.monotonic()
    os.kill(scan.pid, signum)
    while group_members(scan.pid) and time.monotonic() - sent < 5:
        time.sleep(0.05)

    left = group_members(scan.pid)
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    print(f"process group gone {time.monotonic() - sent:.2f} s after the signal")
    assert not left, f"still alive {time.monotonic() - sent:.1f} s after the signal: {left}"
    assert stdout_closed.wait(1), "something still holds the caller's stdout pipe"
    assert scan.wait() == 128 + signum
    message = scan.stderr.read().decode()
    assert f"interrupted ({signal.Signals(signum).name})" in message
    assert f"Continue with: {shlex.join(['audit', *command[3:], '--resume'])}\n" in message

    finished = subprocess.run(command + ["--resume"], capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    ids = pq.read_table(out / "results.parquet", columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == [f"{i:04d}.png" for i in range(IMAGES)]
