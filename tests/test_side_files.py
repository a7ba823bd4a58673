"""Every JSON file beside a source (a baseline's summary, a calibration, a probe, a bank, the input of
`--from-scan`) goes through one reader: regular files only (a FIFO is refused at once, never waited
on), size and nesting limits, fields and types checked before the scan starts; a bad file is one
error naming the file and the field (exit 2), never a traceback after a whole scan."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
from click.testing import CliRunner

from audit import ScanConfig, scan, side_files
from audit.bank.index import Bank, BankError
from audit.cli import main
from audit.engine.user_files import UserFileError, check_calibration, check_probe
from loops.errors import ConfigError
from loops.from_scan import read_scan
from tests.conftest import image_bytes, noise_image

NESTED = "[" * 100_000 + "]" * 100_000
CONFIG = ScanConfig(detectors=("metadata",))


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes(noise_image()))
    return folder


@pytest.fixture
def baseline(src, tmp_path):
    out = tmp_path / "old"
    scan(str(src), out, workers=0, config=CONFIG)
    return out


@pytest.fixture
def no_scan(monkeypatch):
    """The checks must come before any image is scanned."""

    def started(*args, **kwargs):
        raise AssertionError("the scan started before its side files were checked")

    monkeypatch.setattr("audit.engine.local._run", started)


@pytest.fixture
def no_hang():
    def hung(*_):
        raise TimeoutError("reading a side file hung")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def edit_summary(folder, change) -> None:
    summary = json.loads((folder / "summary.json").read_text())
    change(summary)
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda s: s.update(estimate={}), "estimate.interval"),
        (lambda s: s["estimate"].update(point="0.3"), "estimate.point"),
        (lambda s: s["estimate"].update(interval="wide"), "estimate.interval"),
        (lambda s: s["estimate"].update(lower_bound=[1]), "estimate.lower_bound"),
        (lambda s: s.update(per_generator=[["x"]]), "per_generator"),
        (lambda s: s.update(groups={"by": "folder", "groups": ["x"]}), "groups.groups[0]"),
        (lambda s: s["groups"]["groups"][0].update(flagged_share="high"), "groups.groups[0].flagged_share"),
        (lambda s: s.update(counts="many"), "counts"),
    ],
)
def test_a_bad_baseline_summary_is_refused_by_field_before_the_scan(src, baseline, tmp_path, no_scan, change, field):
    edit_summary(baseline, change)
    with pytest.raises(UserFileError, match=re.escape(f"summary.json: field '{field}'")):
        scan(str(src), tmp_path / "new", workers=0, config=CONFIG, baseline=baseline)
    assert not (tmp_path / "new" / "summary.json").exists()


def test_the_cli_says_which_file_and_field_and_exits_2(src, baseline, tmp_path):
    edit_summary(baseline, lambda s: s.update(estimate={}))
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(src),
            "--out",
            str(tmp_path / "new"),
            "--quiet",
            "--detectors",
            "metadata",
            "--baseline",
            str(baseline),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "summary.json" in result.output and "estimate" in result.output


def test_deeply_nested_json_is_an_error_naming_the_file(src, baseline, tmp_path, no_scan):
    (baseline / "summary.json").write_text(NESTED)
    with pytest.raises(UserFileError, match="nested deeper"):
        scan(str(src), tmp_path / "new", workers=0, config=CONFIG, baseline=baseline)
    (tmp_path / "calibration.json").write_text(NESTED)
    with pytest.raises(UserFileError, match="calibration.json is nested deeper"):
        check_calibration(tmp_path / "calibration.json")
    with pytest.raises(ConfigError, match="nested deeper"):
        read_scan(baseline / "summary.json")
    bank = tmp_path / "bank"
    bank.mkdir()
    (bank / "bank.json").write_text(NESTED)
    with pytest.raises(BankError, match="nested deeper"):
        Bank.open(bank)


def test_fifos_in_place_of_side_files_are_refused_at_once(baseline, tmp_path, no_hang):
    (baseline / "summary.json").unlink()
    os.mkfifo(baseline / "summary.json")
    with pytest.raises(UserFileError, match="not a regular file"):
        scan(str(tmp_path / "src"), tmp_path / "new", workers=0, config=CONFIG, baseline=baseline)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_scan(baseline)
    probe = tmp_path / "probe"
    probe.mkdir()
    os.mkfifo(probe / "probe.json")
    with pytest.raises(UserFileError, match="not a regular file"):
        check_probe(probe)


def test_a_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(side_files, "MAX_BYTES", 1000)
    (tmp_path / "calibration.json").write_text(json.dumps({"detectors": {}, "pad": "x" * 2000}))
    with pytest.raises(UserFileError, match="larger than 1,000 bytes"):
        check_calibration(tmp_path / "calibration.json")


def test_nan_is_not_json(baseline, tmp_path):
    text = (baseline / "summary.json").read_text()
    (baseline / "summary.json").write_text(text.replace('"point": 0.0', '"point": NaN', 1))
    with pytest.raises(UserFileError, match="field 'estimate.point' must be a number from 0 to 1, got nan"):
        scan(str(tmp_path / "src"), tmp_path / "new", workers=0, config=CONFIG, baseline=baseline)


def test_from_scan_checks_the_summary_fields(baseline):
    edit_summary(baseline, lambda s: s["estimate"].update(interval=5))
    with pytest.raises(ConfigError, match="estimate.interval"):
        read_scan(baseline)


def test_a_fifo_as_the_options_file_is_refused(tmp_path, no_hang):
    from audit import defaults

    os.mkfifo(tmp_path / "audit.toml")
    with pytest.raises(defaults.ConfigError, match="not a regular file"):
        defaults.load_scan_defaults(tmp_path / "audit.toml")
