"""The scan pipeline end to end: outputs, API vs CLI, CI gate and exit codes, JUnit, config
defaults, parallel workers, and resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from audit import ScanConfig, scan
from audit.cli import main
from audit.demo import sample_photo
from audit.detectors.watermark import KNOWN_KEYS, embed_watermark
from tests.conftest import noise_image

A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model hash: abc123"


def smooth_image(seed: int, size=320) -> np.ndarray:
    """A smooth colourful image (watermarks survive on smooth content)."""
    y, x = np.mgrid[0:size, 0:size] / size
    phase = seed * 0.7
    channels = [np.sin(2 * np.pi * (x * (1 + c) + y * (2 - c) * 0.5) + phase + c) for c in range(3)]
    return ((np.stack(channels, axis=2) + 1) * 110 + 15).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan-src")
    for i in range(4):
        Image.fromarray(smooth_image(i)).save(root / f"real_{i}.png")
    sd2 = next(k for k in KNOWN_KEYS if k.generator == "Stable Diffusion 2.x")
    Image.fromarray(embed_watermark(sample_photo("astronaut.png"), sd2)).save(root / "wm_sd2.png")
    info = PngInfo()
    info.add_text("parameters", A1111)
    noise_image((64, 64)).save(root / "a1111.png", pnginfo=info)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def test_outputs_and_summary(folder, tmp_path):
    result = scan(str(folder), tmp_path, workers=0)
    by_id = {r["id"]: r for r in result.rows}
    assert by_id["wm_sd2.png"]["flagged"] and (by_id["wm_sd2.png"]["generator"], by_id["wm_sd2.png"]["tool"]) == (
        "SD 2.x",
        "invisible watermark",
    )
    assert by_id["a1111.png"]["flagged"] and (by_id["a1111.png"]["generator"], by_id["a1111.png"]["tool"]) == (
        "unknown model",
        "AUTOMATIC1111",
    )
    assert by_id["a1111.png"]["watermark_decision"] == "not_applicable"  # 64x64 is too small for a watermark
    assert not any(by_id[f"real_{i}.png"]["flagged"] for i in range(4))
    assert by_id["broken.png"]["status"] == "error"

    s = result.summary
    assert s["counts"] == {"total": 7, "ok": 6, "error": 1, "flagged": 2, "hard_evidence": 2}
    assert s["estimate"]["flagged_fraction"] == pytest.approx(2 / 6)
    low, high = s["estimate"]["interval"]
    assert 0 < low < 2 / 6 < high < 1 and s["estimate"]["is_lower_bound"]
    assert (s["per_generator"], s["per_tool"]) == (
        {"SD 2.x": 1, "unknown model": 1},
        {"invisible watermark": 1, "AUTOMATIC1111": 1},
    )
    assert s["errors"]["by_reason"] == {"corrupt image": 1}

    table = pq.read_table(tmp_path / "results.parquet")
    assert table.num_rows == 7
    assert {
        "id",
        "uri",
        "status",
        "error",
        "metadata_score",
        "metadata_decision",
        "metadata_evidence",
        "watermark_score",
        "watermark_decision",
        "watermark_evidence",
    } <= set(table.column_names)
    assert json.loads((tmp_path / "summary.json").read_text()) == s
    report = (tmp_path / "report.md").read_text()
    assert "wm_sd2.png" in report and "broken.png" in report and "lower bound" in report


def test_parallel_workers_give_the_same_rows(folder, tmp_path):
    serial = scan(str(folder), workers=0, batch_size=2).rows
    parallel = scan(str(folder), workers=2, batch_size=2).rows
    assert serial == parallel


def test_cli_gate_exit_codes_and_junit(folder, tmp_path):
    runner = CliRunner()
    junit = tmp_path / "junit.xml"
    args = ["scan", str(folder), "--out", str(tmp_path / "o"), "--workers", "0", "--quiet", "--overwrite"]
    failed = runner.invoke(main, args + ["--fail-above", "0.05", "--junit", str(junit)])
    assert failed.exit_code == 1, failed.output
    cases = ET.parse(junit).getroot().findall("testcase")
    names = [c.get("name") for c in cases]
    assert names == ["scan completed", "synthetic fraction <= 0.05", "error share <= 0.5", "requested detectors ran"]
    assert [c.find("failure") is not None for c in cases] == [False, True, False, False]

    passed = runner.invoke(main, args + ["--fail-above", "0.5", "--format", "json", "--junit", str(junit)])
    assert passed.exit_code == 0, passed.output
    printed = json.loads(passed.stdout)
    assert printed["counts"]["flagged"] == 2 and all(c["passed"] for c in printed["checks"])
    assert ET.parse(junit).getroot().get("failures") == "0"

    assert runner.invoke(main, ["scan", str(tmp_path / "missing"), "--quiet"]).exit_code == 2
    assert runner.invoke(main, args + ["--detectors", "metadata,nonsense"]).exit_code == 2
    assert runner.invoke(main, args + ["--fail-above", "2"]).exit_code == 2
    assert runner.invoke(main, args + ["--watermark-key", "broken-spec"]).exit_code == 2


def test_api_returns_what_the_cli_writes(folder, tmp_path):
    result = scan(str(folder), workers=0)
    runner = CliRunner()
    out = tmp_path / "cli"
    runner.invoke(main, ["scan", str(folder), "--out", str(out), "--workers", "0", "--quiet"])
    assert pq.read_table(out / "results.parquet").to_pylist() == result.rows
    written = json.loads((out / "summary.json").read_text())
    assert written["counts"] == result.summary["counts"] and written["estimate"] == result.summary["estimate"]


def test_config_file_defaults(folder, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.audit]\nfail-above = 0.05\ndetectors = ["metadata"]\nworkers = 0\n')
    monkeypatch.chdir(project)
    runner = CliRunner()
    result = runner.invoke(main, ["scan", str(folder), "--quiet", "--format", "json"])
    assert result.exit_code == 1  # the configured threshold applies: 1/6 flagged by metadata alone
    summary = json.loads(result.stdout)
    assert summary["config"]["detectors"] == ["metadata"] and summary["counts"]["flagged"] == 1
    # the command line overrides the file
    assert runner.invoke(main, ["scan", str(folder), "--quiet", "--fail-above", "0.9", "--overwrite"]).exit_code == 0

    (project / "audit.toml").write_text("no-such-option = 1\n")
    bad = runner.invoke(main, ["scan", str(folder), "--quiet"])
    assert bad.exit_code == 2 and "unknown option" in bad.output


def test_resume_after_kill_gives_identical_rows(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        Image.fromarray(smooth_image(i, size=260)).save(src / f"img_{i:03d}.png")
    reference = scan(str(src), workers=0, config=ScanConfig(detectors=("watermark",))).rows

    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "audit.cli",
        "scan",
        str(src),
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
    journal = out / "results.journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 8):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = journal.read_text().count("\n") - 1
    assert 0 < done_before < 40, "the kill should land mid-scan"
    assert not (out / "results.parquet").exists()

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert pq.read_table(out / "results.parquet").to_pylist() == reference


def test_resume_with_other_settings_is_refused(folder, tmp_path):
    scan(str(folder), tmp_path, workers=0, config=ScanConfig(detectors=("metadata",)))
    result = CliRunner().invoke(
        main, ["scan", str(folder), "--out", str(tmp_path), "--resume", "--quiet", "--detectors", "watermark"]
    )
    assert result.exit_code == 2 and "other settings" in result.output


def test_every_scan_option_can_come_from_the_config_file():
    from audit.defaults import SCAN_KEYS

    options = {p.name for p in main.commands["scan"].params if p.name not in ("source", "config")}
    assert options - {"fmt"} | {"format"} == SCAN_KEYS


def test_config_option_after_the_command_name(folder, tmp_path):
    """`audit scan SOURCE --config FILE` reads the file like `audit --config FILE scan SOURCE`; options on
    the command line still win, and a missing file is a usage error."""
    options = tmp_path / "options.toml"
    options.write_text('detectors = ["metadata"]\nworkers = 0\nfail-above = 0.05\n')
    runner = CliRunner()
    for args in (["scan", str(folder), "--config", str(options)], ["--config", str(options), "scan", str(folder)]):
        result = runner.invoke(
            main, [*args, "--quiet", "--format", "json", "--out", str(tmp_path / "o"), "--overwrite"]
        )
        assert result.exit_code == 1, result.output  # the file's threshold applies
        assert json.loads(result.stdout)["config"]["detectors"] == ["metadata"]
    overridden = runner.invoke(
        main,
        [
            "scan",
            str(folder),
            "--config",
            str(options),
            "--fail-above",
            "0.9",
            "--quiet",
            "--out",
            str(tmp_path / "o"),
            "--overwrite",
        ],
    )
    assert overridden.exit_code == 0, overridden.output
    missing = runner.invoke(main, ["scan", str(folder), "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "config file not found" in missing.output


def test_id_scope_comes_from_the_container_not_from_a_hash_in_a_name():
    from audit.engine.local import id_scope

    assert id_scope("evil.tar#x/a.png", None) == "evil.tar#x"  # a folder named evil.tar#x
    assert id_scope("a.png", "/data/s#1.tar") == "/data/s#1.tar"  # a shard whose name holds '#'
    assert id_scope("a.png", None) == ""
