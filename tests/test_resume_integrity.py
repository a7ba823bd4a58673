"""A resume checks the output folder first: parts, journal and manifest agree (rows, positions, a
checksum per part and per journal line). A missing or altered part is scanned again and a forged
journal line is not used, so no row is lost or invented; a part no scan of this folder wrote is
refused by name; a resume without a journal continues from the parts; a refused resume changes
nothing on disk."""

from __future__ import annotations

import os
import signal

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from audit import ScanConfig, scan
from audit.cli import main
from audit.engine import results_store
from audit.engine.journal import JOURNAL_NAME, JournalMismatch
from audit.engine.results_store import MANIFEST_NAME, RESULTS_DIR, ResultsStore
from tests.conftest import image_bytes, noise_image

CONFIG = ScanConfig(detectors=("metadata",))
IMAGES = 12
PART_ROWS = 5  # 12 rows: parts of 5, 5 and 2


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(IMAGES):
        (folder / f"img_{i:02d}.png").write_bytes(image_bytes(noise_image(size=(16, 12), seed=i)))
    return folder


@pytest.fixture(autouse=True)
def small_parts(monkeypatch):
    monkeypatch.setattr(results_store, "PART_ROWS", PART_ROWS)


def full_scan(src, out, **kwargs):
    return scan(str(src), out, workers=0, batch_size=1, config=CONFIG, **kwargs).rows


def interrupted_scan(src, out, batches: int) -> None:
    """A scan killed (as by kill -9) after `batches` batches of one row reached the journal."""
    real_append = ResultsStore.append
    done = []

    def append(self, rows, journal_cells=None):
        if len(done) == batches:
            raise KeyboardInterrupt
        done.append(1)
        real_append(self, rows, journal_cells)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ResultsStore, "append", append)
        patch.setattr(ResultsStore, "close", lambda self: self.journal.close())  # killed: nothing flushed
        with pytest.raises(KeyboardInterrupt):
            full_scan(src, out)


def part(out, n: int):
    return out / RESULTS_DIR / f"part-{n:06d}.parquet"


def test_a_deleted_part_is_scanned_again_and_no_row_is_lost(src, tmp_path):
    reference = full_scan(src, tmp_path / "ref")
    out = tmp_path / "out"
    full_scan(src, out)
    part(out, 0).unlink()
    result = scan(str(src), out, workers=0, batch_size=1, config=CONFIG, resume=True)
    assert result.rows == reference and len(reference) == IMAGES
    assert any("part-000000.parquet" in note and "missing" in note for note in result.summary["notes"])


def test_an_altered_part_is_set_aside_and_scanned_again(src, tmp_path):
    reference = full_scan(src, tmp_path / "ref")
    out = tmp_path / "out"
    full_scan(src, out)
    table = pq.read_table(part(out, 1))
    pq.write_table(table.slice(0, 3), part(out, 1))  # two rows dropped by someone
    result = scan(str(src), out, workers=0, batch_size=1, config=CONFIG, resume=True)
    assert result.rows == reference
    assert list((out / RESULTS_DIR).glob("part-000001.parquet.rejected*"))  # kept for a look, never read
    assert any("part-000001.parquet" in note for note in result.summary["notes"])


def test_a_part_no_scan_of_this_folder_wrote_is_refused_by_name(src, tmp_path):
    full_scan(src, tmp_path / "other")
    out = tmp_path / "out"
    full_scan(src, out)
    part(tmp_path / "other", 2).replace(part(out, 7))
    before = sorted(p.name for p in out.rglob("*"))
    result = CliRunner().invoke(
        main, ["scan", str(src), "--out", str(out), "--resume", "--quiet", "--detectors", "metadata", "--workers", "0"]
    )
    assert result.exit_code == 2 and "part-000007.parquet" in result.output.replace("\n", "")  # rich wraps
    assert sorted(p.name for p in out.rglob("*")) == before


def test_a_forged_journal_line_is_not_used(src, tmp_path):
    reference = full_scan(src, tmp_path / "ref")
    out = tmp_path / "out"
    interrupted_scan(src, out, batches=8)  # part-000000 holds rows 0-4, the journal rows 5-7
    journal = out / JOURNAL_NAME
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == 4
    lines[2] = lines[2].replace('"ok"', '"error"', 1)  # one row's status changed by hand
    journal.write_text("".join(lines), encoding="utf-8")
    result = scan(str(src), out, workers=0, batch_size=1, config=CONFIG, resume=True)
    assert result.rows == reference
    assert any(JOURNAL_NAME in note and "line 3" in note for note in result.summary["notes"])


def test_a_resume_without_a_journal_continues_from_the_parts(src, tmp_path):
    reference = full_scan(src, tmp_path / "ref")
    out = tmp_path / "out"
    interrupted_scan(src, out, batches=8)
    (out / JOURNAL_NAME).unlink()
    assert scan(str(src), out, workers=0, batch_size=1, config=CONFIG, resume=True).rows == reference


def test_parts_without_their_manifest_are_refused_by_name(src, tmp_path):
    out = tmp_path / "out"
    interrupted_scan(src, out, batches=8)
    (out / RESULTS_DIR / MANIFEST_NAME).unlink()
    with pytest.raises(JournalMismatch, match=MANIFEST_NAME):
        full_scan(src, out, resume=True)


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("change", ["detectors", "source"])
def test_a_refused_resume_changes_nothing_on_disk(src, tmp_path, change):
    out = tmp_path / "out"
    full_scan(src, out)
    before = snapshot(out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.png").write_bytes(image_bytes(noise_image()))
    with pytest.raises(JournalMismatch, match="other settings"):
        if change == "detectors":
            scan(str(src), out, workers=0, config=ScanConfig(detectors=("watermark",)), resume=True)
        else:
            scan(str(other), out, workers=0, config=CONFIG, resume=True)
    assert snapshot(out) == before


def test_a_fifo_in_place_of_the_journal_is_set_aside_without_hanging(src, tmp_path):
    reference = full_scan(src, tmp_path / "ref")
    out = tmp_path / "out"
    interrupted_scan(src, out, batches=8)
    (out / JOURNAL_NAME).unlink()
    os.mkfifo(out / JOURNAL_NAME)

    def hung(*_):
        raise TimeoutError("the resume hung on the FIFO")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        assert full_scan(src, out, resume=True) == reference
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
