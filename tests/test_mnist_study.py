"""examples/mnist_study.py runs end to end (--quick: the same code at toy sizes), writes one result
folder per (configuration, seed) with the per-generation diagnostics, its bands and verdict tables,
and skips finished runs when run again."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_loops_diffusion import _digit_folder

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist_study.py"


def test_study_script_quick_run_and_rerun(tmp_path):
    dataset = _digit_folder(tmp_path / "bars")
    args = [
        sys.executable,
        str(SCRIPT),
        "--dataset",
        dataset,
        "--quick",
        "--plan",
        "small",
        "--generations",
        "1",
        "--seeds",
        "1",
        "--results",
        str(tmp_path / "results"),
        "--work",
        str(tmp_path / "work"),
        "--only",
        "fresh-c0",
        "fresh-c1",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("finished") == 2
    plan = tmp_path / "results" / "small"
    for name in ("fresh-c0", "fresh-c1"):
        for file in ("metrics.csv", "diagnostics.csv", "summary.json", "samples/g000.png", "samples/g001.png"):
            assert (plan / name / "seed0" / file).is_file(), (name, file)
        with open(plan / name / "seed0" / "diagnostics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["generation"] for r in rows] == ["0", "1"]
        assert all(0 <= float(r["label_agreement"]) <= 1 and 0 <= float(r["black_share"]) <= 1 for r in rows)
        assert all(float(r["roughness"]) >= 0 for r in rows)
    with open(plan / "study.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["config"], r["seed"], r["generation"]) for r in rows] == [
        ("fresh-c0", "0", "0"),
        ("fresh-c0", "0", "1"),
        ("fresh-c1", "0", "0"),
        ("fresh-c1", "0", "1"),
    ]
    assert "fresh-c1" in (plan / "bands.md").read_text() and "| fresh-c1 | " in (plan / "roughness.md").read_text()
    verdicts = (plan / "verdicts.md").read_text()
    assert "fewer than 3 seeds" in verdicts and "cannot tell (not run)" in verdicts  # one seed; no accumulate run
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "finished" not in again.stdout  # nothing left to run


def _study_module():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import mnist_study
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return mnist_study


def test_study_plans_hold_the_design():
    mnist_study = _study_module()
    full = mnist_study.PLANS["full"]
    assert {f"fresh-c{c:g}" for c in (0, 0.2, 0.4, 0.6, 0.8, 1)} <= set(full) and "accumulate" in full
    assert any(c.get("guidance") for c in full.values())
    filtered = [c for c in full.values() if c.get("filter", "none") != "none"]
    assert len(filtered) >= 3 and any(c.get("jpeg_quality") and c.get("resize") for c in filtered)
    for plan in ("full", "small"):
        settings = mnist_study.PLAN_SETTINGS[plan]
        assert settings["seeds"] >= 3 and settings["generations"] >= 9


def test_probe_embedder_reaches_every_run_and_defaults_to_the_cheap_one():
    mnist_study = _study_module()
    settings = mnist_study.PLAN_SETTINGS["filters"]
    assert mnist_study.base_config("mnist:x", settings, 0).probe_embedder == "random:tiny"
    chosen = settings | {"probe_embedder": "onnx:clip-vit-b16-int8"}
    assert mnist_study.base_config("mnist:x", chosen, 1).probe_embedder == "onnx:clip-vit-b16-int8"


def test_roughness_table_reads_seed0_grids_back(tmp_path):
    from loops.images.grids import load_grid, save_grid

    study = _study_module()
    rng = np.random.default_rng(0)
    real = np.zeros((200, 16, 16), np.uint8)
    real[:, 4:12, 7:9] = 255  # a bar: 16 steps of 255 across, 4 down, per 240 neighbour pairs: roughness 10.6
    noise = rng.integers(0, 256, (64, 16, 16), dtype=np.uint8)
    samples = study.run_folder(tmp_path, "small", "fresh-c1", 0) / "samples"
    save_grid(real[:64], samples / "g000.png")
    save_grid(noise, samples / "g001.png")
    assert np.array_equal(load_grid(samples / "g001.png", 16), noise)
    with pytest.raises(ValueError, match="8x8 grid of 28x28"):
        load_grid(samples / "g001.png", 28)
    table = study.roughness_markdown(tmp_path, "small", real)
    row = next(line for line in table.splitlines() if line.startswith("| fresh-c1"))
    cells = [cell.strip() for cell in row.strip("| ").split("|")]
    assert cells[1] == "11 / 0.00" and cells[2].endswith("/ 1.00") and float(cells[2].split("/")[0]) > 80
    assert "fresh-c0 |" not in table  # runs without grids have no row
