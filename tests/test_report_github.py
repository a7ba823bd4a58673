"""`audit scan --format github`: a markdown summary appended to $GITHUB_STEP_SUMMARY (never
overwriting it), error annotations for failed checks, and a plain run when the variable is unset."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.report.gate import gate_checks
from audit.report.github import github_annotations, github_summary
from audit.report.text import percent


def _scan(demo_images, tmp_path, *args: str, env: dict):
    """`audit scan` of the demo folder in-process; returns the click result and the summary."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(demo_images),
            "--out",
            str(out),
            "--workers",
            "0",
            "--quiet",
            "--overwrite",
            "--format",
            "github",
            *args,
        ],
        env=env,
    )
    return result, json.loads((out / "summary.json").read_text())


def test_summary_is_appended_twice_and_keeps_what_was_there(demo_images, tmp_path):
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("# an earlier step\n", encoding="utf-8")
    env = {"GITHUB_STEP_SUMMARY": str(step_summary)}
    failed, summary = _scan(demo_images, tmp_path, "--fail-above", "0.05", env=env)
    passed, _ = _scan(demo_images, tmp_path, "--fail-above", "0.5", env=env)
    assert (failed.exit_code, passed.exit_code) == (1, 0), failed.output + passed.output

    text = step_summary.read_text(encoding="utf-8")
    assert text.startswith("# an earlier step\n\n# Synthetic-image audit")
    assert text.count("# Synthetic-image audit") == 2
    first, second = text.split("# Synthetic-image audit")[1:]
    assert "## Gate: FAILED" in first and "| **FAILED** | synthetic fraction 0.3333" in first
    assert "## Gate: passed" in second and "FAILED" not in second

    e, counts = summary["estimate"], summary["counts"]
    low, high = e["interval"]
    assert f"{counts['flagged']} of {counts['ok']} images flagged ({percent(e['point'])}" in first
    assert f"95% CI {percent(low)}-{percent(high)}" in first
    assert f"hard evidence on {counts['hard_evidence']} ({percent(e['lower_bound'])}, a lower bound)" in first
    assert (
        "| metadata | 3 | 18 | 0 |" in first and "| watermark | 4 | 16 | 1 |" in first
    )  # one re-shared copy is under 256 px
    assert "| SDXL | 2 |" in first and "| AUTOMATIC1111 | 1 |" in first and "## Tools" in first
    assert "## Errors (2)" in first and "| corrupt image | 1 |" in first
    assert "marked/wm_coffee.png" not in text  # per-image tables stay in report.md / report.html
    assert "::error title=autophagy-audit::synthetic fraction <= 0.05" in failed.stdout
    assert "::error" not in passed.stdout


def test_unset_variable_is_reported_once_and_the_table_still_prints(demo_images, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result, _ = _scan(demo_images, tmp_path, env={})
    assert result.exit_code == 0, result.output
    assert result.stderr.count("GITHUB_STEP_SUMMARY is not set") == 1
    assert "autophagy-audit scan" in result.stdout and "images scanned" in result.stdout
    assert not list(tmp_path.glob("*.md"))


def test_unwritable_summary_file_is_a_clear_error(demo_images, tmp_path):
    result, _ = _scan(demo_images, tmp_path, env={"GITHUB_STEP_SUMMARY": str(tmp_path / "missing" / "summary.md")})
    assert result.exit_code == 2
    assert "cannot append to $GITHUB_STEP_SUMMARY" in result.stderr


@pytest.fixture
def warned_summary() -> dict:
    """A summary whose estimate has no point and a warning, as an inseparable calibration gives."""
    estimate = {
        "point": None,
        "flagged_fraction": 0.5,
        "interval": [0.1, 1.0],
        "confidence": 0.95,
        "method": "adjusted classify-and-count",
        "interval_method": "bootstrap",
        "note": "corrected.",
        "lower_bound": 0.1,
        "warnings": ["detectors cannot separate the classes\n(TPR - FPR < 0.1)"],
        "operating_points": None,
    }
    return {
        "source": "data|set",
        "counts": {"total": 10, "ok": 10, "error": 0, "flagged": 5, "hard_evidence": 1},
        "estimate": estimate,
        "skipped_detectors": {},
        "notes": [],
        "per_detector": {"probe": {"synthetic": 5}},
        "per_generator": {},
        "errors": {"count": 0, "by_reason": {}},
        "detectors": ["probe"],
    }


def test_warnings_and_a_missing_point_estimate(warned_summary):
    checks = gate_checks(warned_summary, 0.05)
    text = github_summary(warned_summary, checks, 0.05)
    assert "> **WARNING:** detectors cannot separate the classes" in text
    assert "## Gate: FAILED" in text and "no point estimate" in text
    assert "| probe | 5 | 0 | 0 |" in text and "| (none) | 0 |" in text and "## Errors (0)" in text
    annotations = github_annotations(warned_summary, checks)
    assert annotations[0].startswith("::error title=autophagy-audit::synthetic fraction <= 0.05: no point estimate")
    assert (
        annotations[-1] == "::warning title=autophagy-audit::detectors cannot separate the classes%0A(TPR - FPR < 0.1)"
    )
    assert all("\n" not in line for line in annotations)


def test_without_a_threshold_nothing_is_gated(warned_summary):
    text = github_summary(warned_summary, gate_checks(warned_summary, None), None)
    assert "## Gate\n\nNo threshold set (`--fail-above`): nothing gated." in text
