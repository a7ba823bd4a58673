"""Hostile input, one regression test per kind: no single item may stop, hang or escape a scan,
and a scan's output folder and resume journal survive what real runs do to them."""

from __future__ import annotations

import io
import json
import os
import struct
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from audit import ScanConfig, scan
from audit.cli import main
from audit.detectors.base import Signal
from audit.engine import batch
from audit.engine.journal import JOURNAL_NAME
from audit.engine.out_folder import OutFolder, OutFolderBusy
from audit.sources import SourceError, iter_records
from audit.sources.decode import decode_image
from audit.sources.record import ImageRecord
from tests.conftest import image_bytes, noise_image, write_tar


def _tiff_ifd(entries) -> bytes:
    """A little-endian TIFF block with one IFD of (tag, type, count, 4-byte value) entries."""
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")[:4]
    return out + b"\x00\x00\x00\x00"


def _exif_type_confusion_jpeg() -> bytes:
    """200x300 JPEG whose EXIF holds ImageWidth (256) as ASCII and orientation 6: Pillow's
    exif_transpose raises struct.error rewriting it."""
    exif = b"Exif\x00\x00" + _tiff_ifd([(256, 2, 4, b"abc\x00"), (0x0112, 3, 1, struct.pack("<H", 6))])
    return image_bytes(Image.fromarray(np.zeros((300, 200, 3), np.uint8)), "JPEG", exif=exif)


def _scan_rows(source, **kwargs) -> dict[str, dict]:
    return {r["id"]: r for r in scan(str(source), workers=0, **kwargs).rows}


# --- 1. any exception in one item is that item's error row ------------------------------------------------


def test_exif_type_confusion_keeps_the_pixels_and_the_orientation(tmp_path):
    (tmp_path / "confused.jpg").write_bytes(_exif_type_confusion_jpeg())
    image = decode_image(_exif_type_confusion_jpeg())
    assert (image.width, image.height) == (300, 200)  # orientation 6 applied by hand
    assert _scan_rows(tmp_path)["confused.jpg"]["status"] == "ok"


@pytest.mark.parametrize("fmt, mode", [("DDS", "RGBA"), ("SPIDER", "F")])
def test_formats_the_scan_does_not_claim_are_never_opened(tmp_path, fmt, mode):
    buffer = io.BytesIO()
    Image.new(mode, (8, 8)).save(buffer, format=fmt)
    (tmp_path / "named_like.png").write_bytes(buffer.getvalue())
    row = _scan_rows(tmp_path)["named_like.png"]
    assert row["status"] == "error" and row["format"] is None, row


def test_an_unexpected_decoder_exception_is_an_internal_error_row(tmp_path, monkeypatch):
    def broken(im):
        raise NotImplementedError("a plugin corner case")

    monkeypatch.setattr("audit.sources.decode._normalise", broken)
    record = ImageRecord(id="x", uri="x", data=image_bytes(noise_image()))
    assert record.decoded() is None
    assert record.error == "internal error: NotImplementedError: a plugin corner case"


class _CrashesOn:
    """A pixel detector that raises on the records whose id is given."""

    name, hard_evidence = "metadata", True

    def __init__(self, bad_id: str):
        self.bad_id = bad_id

    def detect(self, records):
        if any(r.id == self.bad_id for r in records):
            raise AttributeError("'NoneType' object has no attribute 'get'")
        return [Signal(score=None, decision="no_evidence", evidence=None) for _ in records]


def test_a_detector_crash_costs_only_that_items_row():
    batch.init_worker(ScanConfig(detectors=("metadata",)).resolved(), None)
    batch._WORKER["detectors"] = [_CrashesOn("b")]
    items = [(i, ImageRecord(id=name, uri=name, data=image_bytes(noise_image(seed=i)))) for i, name in enumerate("abc")]
    rows, _ = batch.process_batch(items)
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert rows[1]["error"].startswith("internal error: AttributeError") and "metadata detector" in rows[1]["error"]


def test_a_crash_of_the_scan_itself_exits_3_never_the_gate_code(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(image_bytes(noise_image()))

    def bug(*args, **kwargs):
        raise RuntimeError("a bug in the summary")

    monkeypatch.setattr("audit.engine.local.finish_scan", bug)
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "0",
            "--quiet",
            "--fail-above",
            "0.5",
        ],
    )
    assert result.exit_code == 3, result.output
    assert "internal error" in result.output and "a bug in the summary" in result.output


# --- 2. bounded time per item ------------------------------------------------------------------------------


def test_hostile_xmp_is_read_in_linear_time(tmp_path):
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "DigitalSourceType " * 50_000)  # 900 KB; quadratic took hours
    (tmp_path / "xmp.png").write_bytes(image_bytes(noise_image(), "PNG", pnginfo=info))
    started = time.monotonic()
    row = _scan_rows(tmp_path)["xmp.png"]
    assert row["status"] == "ok" and not row["flagged"]
    assert time.monotonic() - started < 20  # a hang guard, not a speed target


@pytest.mark.timeout(60)
def test_fifo_path_cells_never_block(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "good.png").write_bytes(image_bytes(noise_image()))
    pq.write_table(pa.table({"path": ["pipe.png", "good.png"]}), tmp_path / "t.parquet")
    rows = list(scan(str(tmp_path / "t.parquet"), workers=0).rows)
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["error"].startswith("not a regular file")


@pytest.mark.timeout(60)
def test_a_huge_brace_pattern_is_refused_at_once(tmp_path):
    with pytest.raises(SourceError, match="more than"):
        next(iter_records(str(tmp_path / "x{0000000..9999999}.tar")))


# --- 4. nothing outside the source is read ------------------------------------------------------------


def test_path_cells_are_confined_to_the_parquet_files_folder(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(image_bytes(noise_image()))
    data = tmp_path / "data"
    data.mkdir()
    (data / "inside.png").write_bytes(image_bytes(noise_image()))
    (data / "link.png").symlink_to(secret)
    pq.write_table(pa.table({"path": ["inside.png", "../secret.png", str(secret), "link.png"]}), data / "t.parquet")
    rows = scan(str(data / "t.parquet"), workers=0).rows
    assert [r["status"] for r in rows] == ["ok", "error", "error", "error"]
    assert all(r["error"].startswith("outside the source") and r["sha256"] is None for r in rows[1:])


@pytest.fixture
def linked_folder(tmp_path):
    """root/ with a real image, a link to a folder inside, a link to a folder outside and a link
    to an image outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.png").write_bytes(image_bytes(noise_image(seed=1)))
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "s.png").write_bytes(image_bytes(noise_image(seed=2)))
    (root / "in_link").symlink_to(root / "sub")
    (root / "out_link").symlink_to(outside)
    (root / "file_link.png").symlink_to(outside / "o.png")
    return root


def _statuses(root, follow_links):
    rows = scan(str(root), workers=0, config=ScanConfig(follow_links=follow_links)).rows
    return {r["id"]: (r["status"], r["error"]) for r in rows}


def test_links_leaving_the_folder_are_not_followed_by_default(linked_folder):
    found = _statuses(linked_folder, "inside")
    assert {k for k, (s, _) in found.items() if s == "ok"} == {"in_link/s.png"}  # each folder once
    assert found["out_link"][1].startswith("link leads outside the source")
    assert found["file_link.png"][1].startswith("link leads outside the source")
    assert "out_link/o.png" not in found


def test_follow_links_none_and_all(linked_folder):
    none = _statuses(linked_folder, "none")
    assert {k for k, (s, _) in none.items() if s == "ok"} == {"sub/s.png"}
    assert all(e.startswith("link not followed") for k, (s, e) in none.items() if s == "error")
    every = _statuses(linked_folder, "all")
    assert {k for k, (s, _) in every.items() if s == "ok"} == {"in_link/s.png", "out_link/o.png", "file_link.png"}


# --- 5. resume never loses or duplicates a row --------------------------------------------------------


def _tar(path, members) -> None:
    write_tar(path, members)


def test_repeated_names_get_ids_no_other_item_has_and_resume_is_identical(tmp_path):
    png = [image_bytes(noise_image(seed=i)) for i in range(4)]
    _tar(tmp_path / "s.tar", [("a.png", png[0]), ("a.png", png[1]), ("a.png#1", png[2]), ("b.png", png[3])])
    out = tmp_path / "out"
    whole = scan(str(tmp_path / "s.tar"), out, workers=0, batch_size=1).rows
    ids = [r["id"] for r in whole]
    assert len(set(ids)) == 4 and ids[:2] == ["s.tar/a", "s.tar/a#1"]  # ids are sample keys
    journal = out / JOURNAL_NAME
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:3]))  # header + 2 rows
    resumed = scan(str(tmp_path / "s.tar"), out, workers=0, batch_size=1, resume=True).rows
    assert [(r["id"], r["sha256"]) for r in resumed] == [(r["id"], r["sha256"]) for r in whole]


def test_tar_member_names_that_are_not_utf8_are_escaped(tmp_path):
    _tar(tmp_path / "s.tar", [(os.fsdecode(b"bad\xff.png"), image_bytes(noise_image()))])
    result = scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    assert [r["id"] for r in result.rows] == ["s.tar/bad\\xff"]
    json.loads((tmp_path / "out" / "summary.json").read_text())


def test_an_empty_journal_resumes_as_a_fresh_scan(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(image_bytes(noise_image()))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / JOURNAL_NAME).write_bytes(b"")  # killed before the header reached the disk
    assert len(scan(str(tmp_path / "src"), tmp_path / "out", workers=0, resume=True).rows) == 1


def test_one_scan_at_a_time_per_output_folder_and_no_stale_results(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(image_bytes(noise_image()))
    out = tmp_path / "out"
    with OutFolder(out):
        with pytest.raises(OutFolderBusy):
            scan(str(tmp_path / "src"), out, workers=0)
    (out / "summary.json").write_text("{}")  # an earlier scan's result

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("audit.engine.local._run", killed)
    with pytest.raises(KeyboardInterrupt):
        scan(str(tmp_path / "src"), out, workers=0, overwrite=True)
    assert not (out / "summary.json").exists()


# --- 6. what the reports carry from the data ---------------------------------------------------------


def test_report_md_escapes_html_in_file_names_and_summary_json_is_strict(tmp_path):
    (tmp_path / "src").mkdir()
    name = "<img src=x onerror=alert(1)>.png"
    (tmp_path / "src" / name).write_bytes(b"not an image")
    scan(str(tmp_path / "src"), tmp_path / "out", workers=0)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "<img" not in report and "&lt;img src=x onerror=alert(1)&gt;.png" in report
    json.loads((tmp_path / "out" / "summary.json").read_text(), parse_constant=pytest.fail)  # no NaN/Infinity


def test_non_finite_numbers_are_written_as_null():
    from audit.report.strict_json import strict_json

    assert json.loads(strict_json({"a": float("nan"), "b": [1.0, float("inf")], "c": (2, 3)})) == {
        "a": None,
        "b": [1.0, None],
        "c": [2, 3],
    }


def test_calibrate_says_which_labelled_source_has_no_readable_images(tmp_path):
    from audit.calibrate import calibrate

    for name in ("real", "synthetic"):
        (tmp_path / name).mkdir()
    for i in range(3):
        (tmp_path / "real" / f"{i}.png").write_bytes(b"broken")
        (tmp_path / "synthetic" / f"{i}.png").write_bytes(image_bytes(noise_image(seed=i)))
    with pytest.raises(ValueError, match=r"real source .* gave 0 readable images.*3 not an image"):
        calibrate(
            str(tmp_path / "real"),
            str(tmp_path / "synthetic"),
            tmp_path / "calib",
            config=ScanConfig(embedder="random"),
            workers=0,
        )


def test_batches_are_cut_by_the_bytes_they_hold():
    from audit.engine.local import _batches

    items = [(i, ImageRecord(id=str(i), uri="", data=b"x" * size)) for i, size in enumerate([10, 10, 90, 5, 5, 5])]
    sizes = [len(b) for b in _batches(iter(items), size=4, max_bytes=100)]
    assert sizes == [3, 3] and [len(b) for b in _batches(iter(items), size=2, max_bytes=10**9)] == [2, 2, 2]


# --- the user's own files are checked before the scan ---------------------------------------------------


def _probe_folder(tmp_path, sidecar: dict | None = None, weights: bytes | None = None):
    from audit.detectors.probe import LinearProbe

    folder = LinearProbe(weight=np.ones(4), bias=0.0, embedder="random").save(tmp_path / "probe")
    if sidecar is not None:
        (folder / "probe.json").write_text(json.dumps({**json.loads((folder / "probe.json").read_text()), **sidecar}))
    if weights is not None:
        (folder / "probe.safetensors").write_bytes(weights)
    return folder


def _good_calibration() -> dict:
    def point():
        return {"tp": 9, "fn": 1, "fp": 1, "tn": 9, "n_synthetic": 10, "n_real": 10, "tpr": 0.9, "fpr": 0.1}

    return {
        "detectors": {"metadata": point()},
        "combined": point(),
        "hard_evidence": point(),
        "combined_rest": point(),
        "probe": {"train_prior": 0.5},
    }


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda c: c.pop("hard_evidence"), "hard_evidence"),
        (lambda c: c["combined_rest"].update(tp="9"), "combined_rest'.tp"),
        (lambda c: c["combined_rest"].update(tp=10**15, n_synthetic=10**15 + 1), "combined_rest'.tp"),
        (lambda c: c["combined"].update(fpr=float("nan")), "combined'.fpr"),
        (lambda c: c["detectors"]["metadata"].update(fn=5), "detectors.metadata"),
        (lambda c: c["probe"].update(train_prior=2), "probe.train_prior"),
    ],
)
def test_a_bad_calibration_file_is_refused_before_the_scan_naming_the_field(tmp_path, edit, field):
    from audit.engine.user_files import UserFileError

    calibration = _good_calibration()
    edit(calibration)
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(UserFileError, match=f"calibration.json.*{field}"):
        ScanConfig(calibration=str(tmp_path / "calib")).resolved()


@pytest.mark.parametrize(
    "sidecar, weights, message",
    [
        ({"threshold": "0.5"}, None, "threshold"),
        ({"surprise": 1}, None, "unknown field"),
        ({"embedder": 7}, None, "embedder"),
        ({}, b"\x80\x04\x95pickle", "not a safetensors file"),
        ({"dim": 5}, None, "dim 5"),
    ],
)
def test_a_bad_probe_folder_is_refused_before_the_scan(tmp_path, sidecar, weights, message):
    from audit.engine.user_files import UserFileError

    folder = _probe_folder(tmp_path, sidecar, weights)
    with pytest.raises(UserFileError, match=message):
        ScanConfig(probe=str(folder)).resolved()


def test_a_good_probe_and_calibration_pass_the_checks(tmp_path):
    from audit.engine.user_files import check_calibration, check_probe

    (tmp_path / "calibration.json").write_text(json.dumps(_good_calibration()))
    assert check_calibration(tmp_path / "calibration.json")["probe"]["train_prior"] == 0.5
    assert check_probe(_probe_folder(tmp_path))["embedder"] == "random"


# --- a time budget per item in the workers -------------------------------------------------------------


def test_an_item_over_the_time_budget_is_an_error_row_and_the_rest_is_scanned(tmp_path):
    """A 36 MP image (about a second to decode here) against a 0.1 s budget, among small images, with
    two workers: its worker is ended and replaced, the others' rows are whole, a resume is identical."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        noise_image((32, 32), seed=i).save(src / f"s{i:02d}.png")
    Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (6000, 24))).convert("RGB").save(src / "s05_big.png")
    out = tmp_path / "out"
    rows = scan(str(src), out, workers=2, batch_size=4, item_timeout=0.1).rows
    failed = {r["id"]: r["error"] for r in rows if r["status"] == "error"}
    assert failed == {"s05_big.png": "took longer than the time budget (0.1 s, --item-timeout)"}
    assert len(rows) == 13
    again = scan(str(src), out, workers=2, batch_size=4, item_timeout=0.1, resume=True).rows
    assert [(r["id"], r["status"], r["sha256"]) for r in again] == [(r["id"], r["status"], r["sha256"]) for r in rows]


def test_a_broken_pool_is_sorted_by_what_the_workers_were_on():
    from multiprocessing import get_context

    from audit.engine.pool import _triage
    from audit.engine.watchdog import BATCH, ITEM, Slots

    slots = Slots.create(get_context("spawn"), 3)
    for slot, (seq, phase, timed_out) in enumerate([(1, ITEM, 1), (5, ITEM, 0), (8, BATCH, 0)]):
        slots.seq[slot], slots.phase[slot], slots.timed_out[slot] = seq, phase, timed_out
    batches = [[(i, f"r{i}") for i in range(0, 4)], [(i, f"r{i}") for i in range(4, 8)], [(8, "r8"), (9, "r9")]]
    broken = _triage(slots, batches)
    assert broken.timed_out == [(1, "r1")]  # its own watchdog ended it
    assert broken.suspects == [(5, "r5"), (8, "r8"), (9, "r9")]  # ended with the pool: each runs alone
    assert broken.unfinished == [[(0, "r0"), (2, "r2"), (3, "r3")], [(4, "r4"), (6, "r6"), (7, "r7")]]


def test_kill_9_over_a_shard_with_repeated_names_resumes_identically(tmp_path):
    import signal
    import subprocess
    import sys

    from tests.test_scan import smooth_image

    members = []
    for i in range(60):  # every third name repeats, and a real "#1" name follows its would-be twin
        data = image_bytes(Image.fromarray(smooth_image(i, size=260)), "PNG")
        members.append((f"img_{i // 3:02d}.png" if i % 3 != 2 else f"img_{i // 3:02d}.png#1", data))
    _tar(tmp_path / "s.tar", members)
    reference = scan(str(tmp_path / "s.tar"), workers=0, config=ScanConfig(detectors=("watermark",))).rows
    assert len({r["id"] for r in reference}) == 60

    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "audit.cli",
        "scan",
        str(tmp_path / "s.tar"),
        "--out",
        str(out),
        "--workers",
        "1",
        "--batch-size",
        "2",
        "--detectors",
        "watermark",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal, deadline = out / JOURNAL_NAME, time.time() + 120
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 8):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < journal.read_text().count("\n") - 1 < 60, "the kill should land mid-scan"
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert pq.read_table(out / "results.parquet").to_pylist() == reference


@pytest.mark.parametrize("field, value", [("embedder", 7), ("embedder", ""), ("dim", "512"), ("count", -1)])
def test_a_bank_with_a_mistyped_field_is_refused_before_the_scan(tmp_path, field, value):
    from audit.bank import Bank, BankError

    Bank.create(tmp_path / "bank", 4, "random")
    info = json.loads((tmp_path / "bank" / "bank.json").read_text())
    (tmp_path / "bank" / "bank.json").write_text(json.dumps({**info, field: value}))
    with pytest.raises(BankError, match=f"field '{field}'"):
        ScanConfig(bank=str(tmp_path / "bank")).resolved()
