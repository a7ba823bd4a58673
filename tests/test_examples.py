"""The examples run as written: the GitHub Actions workflow's scan step (through scan-dataset.sh),
the pre-commit hooks' entries, and examples/api_tour.py, each on the demo folder in a subprocess
with this environment's `audit` first on PATH."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPT = "examples/github-actions/scan-dataset.sh"


def _env(**extra: str) -> dict:
    """This environment with its bin folder (so its `audit`) first on PATH and no step summary set."""
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return {**env, **extra}


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=180)


def _yaml(relative: str):
    return yaml.safe_load((EXAMPLES / relative).read_text(encoding="utf-8"))


def _demo_fraction(demo_images: Path) -> float:
    """The share of the demo's decodable images that a scan without a bank finds: the marked ones,
    not their re-shared copies (which lost their marks), from its labels.csv."""
    with open(demo_images / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    found = sum(row["label"] == "marked" and not row["file"].startswith("reshared/") for row in rows)
    return found / sum(row["label"] != "error" for row in rows)


@pytest.fixture
def data_dir(demo_images, tmp_path) -> Path:
    """A working folder whose `data` is the demo folder, as in a dataset repository."""
    (tmp_path / "data").symlink_to(demo_images, target_is_directory=True)
    return tmp_path


# --- GitHub Actions ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict:
    return _yaml("github-actions/audit.yml")


def _scan_step(workflow: dict) -> str:
    runs = [step["run"] for step in workflow["jobs"]["audit"]["steps"] if SCRIPT in step.get("run", "")]
    assert len(runs) == 1, f"expected one step running {SCRIPT}, found {runs}"
    return runs[0]


def test_workflow_scans_through_the_script_and_always_uploads_the_reports(workflow):
    triggers = workflow.get("on", workflow.get(True))  # PyYAML (YAML 1.1) reads the key `on` as True
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    steps = workflow["jobs"]["audit"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert uses[0].startswith("actions/checkout@") and any(u.startswith("actions/setup-python@") for u in uses)
    runs = [step["run"] for step in steps if "run" in step]
    assert not any("audit scan" in run for run in runs)  # every scan goes through the script tested below
    assert any('pip install "$AUDIT_PACKAGE"' in run for run in runs)
    scan_index = next(i for i, step in enumerate(steps) if SCRIPT in step.get("run", ""))
    upload_index = next(i for i, u in enumerate(uses) if u.startswith("actions/upload-artifact@"))
    upload = steps[upload_index]
    assert upload_index > scan_index and upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ env.AUDIT_OUT }}" and '"$AUDIT_OUT"' in _scan_step(workflow)
    assert float(workflow["env"]["FAIL_ABOVE"]) == 0.05


def test_workflow_scan_step_gates_summarises_and_writes_the_reports(workflow, demo_images, tmp_path):
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _scan_step(workflow)]  # GitHub's `run` shell
    step_summary = tmp_path / "step_summary.md"
    settings = {**workflow["env"], "DATASET": str(demo_images), "GITHUB_STEP_SUMMARY": str(step_summary)}
    assert _demo_fraction(demo_images) > float(settings["FAIL_ABOVE"])

    failed = _run(command, ROOT, **{**settings, "AUDIT_OUT": str(tmp_path / "failed")})
    passed = _run(command, ROOT, **{**settings, "AUDIT_OUT": str(tmp_path / "passed"), "FAIL_ABOVE": "0.5"})
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert passed.returncode == 0, passed.stderr[-2000:]
    for out in ("failed", "passed"):
        for name in ("report.html", "report.md", "summary.json", "results.parquet", "junit.xml"):
            assert (tmp_path / out / name).is_file(), f"{out}/{name} missing"
    assert 'failures="1"' in (tmp_path / "failed" / "junit.xml").read_text()
    assert "::error title=autophagy-audit::synthetic fraction <= 0.05" in failed.stdout
    text = step_summary.read_text(encoding="utf-8")
    assert text.count("# Synthetic-image audit") == 2
    assert "## Gate: FAILED" in text and "## Gate: passed" in text
    assert f"({100 * _demo_fraction(demo_images):.2f}%, 95% CI" in text


def test_scan_script_defaults_to_data_audit_out_and_five_percent(data_dir):
    done = _run(["bash", str(ROOT / SCRIPT)], data_dir)
    assert done.returncode == 1, done.stderr[-2000:]
    assert (data_dir / "audit-out" / "report.html").is_file() and (data_dir / "audit-out" / "junit.xml").is_file()
    assert "GITHUB_STEP_SUMMARY is not set" in done.stderr
    assert "synthetic fraction <= 0.05" in done.stderr


# --- pre-commit -------------------------------------------------------------------------------


def test_local_pre_commit_hook_entry_gates_the_data_folder(data_dir):
    config = _yaml("pre-commit/.pre-commit-config.yaml")
    repo = config["repos"][0]
    hook = repo["hooks"][0]
    assert repo["repo"] == "local" and hook["language"] == "system" and hook["pass_filenames"] is False
    assert re.search(hook["files"], "data/marked/wm_coffee.png") and not re.search(hook["files"], "src/x.py")
    entry = shlex.split(hook["entry"])  # how pre-commit splits an entry

    failed = _run(entry, data_dir)
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert (data_dir / "audit-out" / "report.html").is_file()
    passed = _run(entry + ["--fail-above", "0.5"], data_dir)  # `args:` in a config are appended like this
    assert passed.returncode == 0, passed.stderr[-2000:]


def test_published_pre_commit_hook_runs_its_entry_with_its_default_args(data_dir):
    [hook] = _yaml("pre-commit/.pre-commit-hooks.yaml")
    assert hook["id"] == "audit-scan" and hook["pass_filenames"] is False and hook["language"] == "python"
    assert "--fail-above" in hook["args"] and re.search(hook["files"], "data/img.JPG".lower())
    done = _run(shlex.split(hook["entry"]) + hook["args"], data_dir)
    assert done.returncode == 1, done.stderr[-2000:]
    assert (data_dir / "audit-out" / "summary.json").is_file()


# --- Python API -------------------------------------------------------------------------------


def test_api_tour_scans_estimates_and_simulates(demo_images, tmp_path):
    done = _run([sys.executable, str(EXAMPLES / "api_tour.py"), str(demo_images)], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    fraction = _demo_fraction(demo_images)
    assert done.stdout.startswith(f"scanned {demo_images}: 21 images, 2 errors, 7 flagged")
    assert f"synthetic fraction {fraction:.2%}" in done.stdout
    assert f"self-consuming loop at contamination {round(fraction, 3)}, generation 20" in done.stdout
    rows = dict(re.findall(r"^(fresh c=\S+(?: filter=\w+)?)\s+[\d.]+\s+[\d.]+\s+([\d.]+)%$", done.stdout, re.MULTILINE))
    c = f"fresh c={round(fraction, 3)}"
    assert set(rows) == {c, f"{c} filter=watermark", f"{c} filter=oracle"}, done.stdout
    assert float(rows[f"{c} filter=oracle"]) == 0  # the oracle removes every synthetic item
    assert float(rows[f"{c} filter=watermark"]) < float(rows[c]) == pytest.approx(100 * fraction, abs=1)
    assert list(tmp_path.iterdir()) == []  # without --out nothing is left behind
