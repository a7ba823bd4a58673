"""The CI gate never passes on nothing: an empty source, a source of non-images, an all-broken
folder, a pattern naming missing shards, too many errors and a requested detector that did not run
all fail with their reason; an output folder holding another scan is never overwritten silently."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.detectors.probe import LinearProbe
from tests.conftest import image_bytes, noise_image


def _scan(*args: str):
    return CliRunner().invoke(main, ["scan", *args, "--workers", "0", "--quiet"])


def _folder(root, good: int = 0, broken: int = 0, other: int = 0):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(good):
        (root / f"good{i}.png").write_bytes(image_bytes(noise_image(seed=i)))
    for i in range(broken):
        (root / f"broken{i}.png").write_bytes(b"not an image")
    for i in range(other):
        (root / f"notes{i}.txt").write_text("caption")
    return root


def test_an_empty_folder_or_one_without_images_fails_with_what_was_skipped(tmp_path):
    empty = _scan(str(_folder(tmp_path / "empty")), "--out", str(tmp_path / "o1"), "--fail-above", "0.05")
    assert empty.exit_code == 2 and "no images found in" in empty.output
    texts = _scan(str(_folder(tmp_path / "texts", other=3)), "--out", str(tmp_path / "o2"))
    assert texts.exit_code == 2 and "3 files that are not images were skipped" in " ".join(texts.output.split())


@pytest.mark.parametrize("gate", [[], ["--fail-above", "0.05"]])
def test_a_folder_whose_every_file_is_broken_fails(tmp_path, gate):
    result = _scan(str(_folder(tmp_path / "src", broken=3)), "--out", str(tmp_path / "o"), *gate)
    assert result.exit_code == 2, result.output
    assert "no image of" in result.output and "3 errors" in result.output


def test_too_many_errors_fail_the_gate(tmp_path):
    src = _folder(tmp_path / "src", good=3, broken=4)
    failed = _scan(str(src), "--out", str(tmp_path / "o"), "--fail-above", "0.9", "--format", "json")
    assert failed.exit_code == 1
    check = next(c for c in json.loads(failed.stdout)["checks"] if c["name"].startswith("error share"))
    assert not check["passed"] and "4 of 7 items are errors" in check["message"]
    relaxed = _scan(
        str(src), "--out", str(tmp_path / "o"), "--overwrite", "--fail-above", "0.9", "--max-error-rate", "0.6"
    )
    assert relaxed.exit_code == 0, relaxed.output


def _shards(root, names):
    root.mkdir()
    for name in names:
        with tarfile.open(root / name, "w") as tar:
            data = image_bytes(noise_image())
            info = tarfile.TarInfo("0/img.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return root


def test_missing_shards_of_a_pattern_fail_unless_allowed(tmp_path):
    root = _shards(tmp_path / "shards", ["00000.tar", "00001.tar", "00003.tar"])
    pattern = str(root / "{00000..00005}.tar")
    failed = _scan(pattern, "--out", str(tmp_path / "o"), "--fail-above", "0.5")
    text = " ".join(failed.output.split())
    assert failed.exit_code == 2 and "3 of the 6 paths" in text and "00002.tar" in text
    allowed = _scan(
        pattern, "--out", str(tmp_path / "o"), "--fail-above", "0.5", "--allow-missing-shards", "--format", "json"
    )
    assert allowed.exit_code == 0, allowed.output
    summary = json.loads(allowed.stdout)
    assert summary["counts"]["ok"] == 3
    assert [p.rsplit("/", 1)[1] for p in summary["source_files"]["missing"]] == ["00002.tar", "00004.tar", "00005.tar"]


def test_a_requested_detector_that_cannot_run_fails_the_gate_and_warns_without_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    LinearProbe(weight=np.ones(512, np.float32), bias=0.0, embedder="ViT-B-32=/nonexistent.bin").save(tmp_path / "p")
    src = _folder(tmp_path / "src", good=2)
    gated = _scan(
        str(src),
        "--out",
        str(tmp_path / "o"),
        "--probe",
        str(tmp_path / "p"),
        "--fail-above",
        "0.5",
        "--format",
        "github",
    )
    assert gated.exit_code == 2, gated.output
    assert "::error title=autophagy-audit::requested detectors ran: probe did not run" in gated.output
    plain = _scan(str(src), "--out", str(tmp_path / "o"), "--overwrite", "--probe", str(tmp_path / "p"))
    assert plain.exit_code == 0 and "WARNING: detector probe did not run" in " ".join(plain.output.split())


def test_error_rows_are_annotated_and_listed_in_the_step_summary(tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    result = _scan(str(_folder(tmp_path / "src", good=2, broken=2)), "--out", str(tmp_path / "o"), "--format", "github")
    assert result.exit_code == 0, result.output
    assert "::warning title=autophagy-audit::2 items could not be scanned: broken0.png, broken1.png" in result.output
    assert "| broken0.png | not an image (unidentified format) |" in step.read_text()


def test_an_output_folder_holding_another_scan_is_never_overwritten_silently(tmp_path):
    src = _folder(tmp_path / "src", good=2)
    out = str(tmp_path / "o")
    assert _scan(str(src), "--out", out).exit_code == 0
    again = _scan(str(src), "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.output and "--resume" in again.output
    assert _scan(str(src), "--out", out, "--overwrite").exit_code == 0
    nothing = _scan(str(src), "--out", str(tmp_path / "fresh"), "--resume")
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.output


SCRIPT = """
import audit
result = audit.scan({src!r}, workers=2, batch_size=2)
print("rows", len(result.rows), sum(r["status"] == "ok" for r in result.rows))
"""


@pytest.mark.parametrize("how", ["script", "stdin", "-c"])
def test_the_api_with_worker_processes_from_a_plain_script_stdin_or_inline_code(tmp_path, how):
    """No `if __name__ == "__main__":` guard: the workers must not run the caller's code again."""
    import subprocess
    import sys

    src = _folder(tmp_path / "src", good=6)
    code = SCRIPT.format(src=str(src))
    (tmp_path / "script.py").write_text(code)
    command = {
        "script": [sys.executable, str(tmp_path / "script.py")],
        "stdin": [sys.executable, "-"],
        "-c": [sys.executable, "-c", code],
    }[how]
    done = subprocess.run(
        command, input=code if how == "stdin" else None, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("rows 6 6")


def test_results_as_arrow_and_pandas(tmp_path):
    from audit import scan

    result = scan(str(_folder(tmp_path / "src", good=2, broken=1)), workers=0)
    table = result.to_arrow()
    assert table.num_rows == 3 and table.column("status").to_pylist() == [r["status"] for r in result.rows]
    assert list(result.to_pandas()["id"]) == [r["id"] for r in result.rows]
