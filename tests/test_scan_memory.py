"""The rows a scan holds in memory are bounded by its buffers, not by the dataset: counted, not
measured as RSS. Every result row is a dict with `seq` and `status`; the test counts those alive in
the scanning process, whoever holds them, while the scan runs and while its outputs are written."""

from __future__ import annotations

import gc
import io

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from audit.engine import finish as finish_module
from audit.engine import local, results_store
from audit.report import tally as tally_module
from tests.conftest import write_tar

IMAGES = 4000
SHARD = 400
PART_ROWS = 300
TALLY_ROWS = 200
BATCH = 8


def tiny_png(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def is_row(o) -> bool:
    return type(o) is dict and "seq" in o and "status" in o


def live_rows() -> int:
    """Rows alive in this process: held by any list, dict, tuple or frame (a row holds only atoms, so
    the garbage collector does not track the row itself, but it tracks what holds it)."""
    rows = {id(r) for o in gc.get_objects() for r in gc.get_referents(o) if is_row(r)}
    return len(rows | {id(o) for o in gc.get_objects() if is_row(o)})


def test_rows_held_by_a_scan_stay_bounded(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for s in range(IMAGES // SHARD):
        write_tar(
            tmp_path / f"{s:03d}.tar", [(f"{i:06d}.png", tiny_png(rng)) for i in range(s * SHARD, (s + 1) * SHARD)]
        )
    monkeypatch.setattr(results_store, "PART_ROWS", PART_ROWS)
    monkeypatch.setattr(finish_module, "TALLY_ROWS", TALLY_ROWS)
    peaks, calls = [], [0]

    def sample(*_):
        calls[0] += 1
        if calls[0] % 20 == 0:
            peaks.append(live_rows())

    add = tally_module.ScanTally.add
    monkeypatch.setattr(
        tally_module.ScanTally, "add", lambda self, rows: (add(self, rows), peaks.append(live_rows()))[0]
    )
    result = local.scan(
        str(tmp_path / "{000..009}.tar"), tmp_path / "out", workers=2, batch_size=BATCH, progress=sample
    )

    assert result.summary["counts"]["total"] == IMAGES
    assert pq.read_metadata(tmp_path / "out" / "results.parquet").num_rows == IMAGES
    assert len(peaks) > 40  # sampled all along the scan and the writing of its outputs
    # the store's buffer, a tally chunk and the batches in flight; never the whole scan
    assert 0 < max(peaks) <= PART_ROWS + TALLY_ROWS + 20 * BATCH, max(peaks)
    assert live_rows() < 50  # nothing left behind (the result reads its rows only when asked)
