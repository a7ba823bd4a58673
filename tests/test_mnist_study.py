"""examples/mnist_study.py runs end to end (--quick: the same code at toy sizes), writes its tables
and skips finished configurations when run again."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.test_loops_diffusion import _digit_folder

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist_study.py"


def test_study_script_quick_run_and_rerun(tmp_path):
    dataset = _digit_folder(tmp_path / "bars")
    args = [sys.executable, str(SCRIPT), "--dataset", dataset, "--quick", "--generations", "1",
            "--results", str(tmp_path / "results"), "--work", str(tmp_path / "work"),
            "--only", "fully-synthetic", "fresh-c0.4-filter-all"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("finished") == 2
    results = tmp_path / "results"
    for name in ("fully-synthetic", "fresh-c0.4-filter-all"):
        for file in ("metrics.csv", "summary.json", "curves.png", "samples/g000.png", "samples/g001.png"):
            assert (results / name / file).is_file(), (name, file)
    with open(results / "study.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["study_config"], r["generation"]) for r in rows] == [
        ("fully-synthetic", "0"), ("fully-synthetic", "1"),
        ("fresh-c0.4-filter-all", "0"), ("fresh-c0.4-filter-all", "1")]
    assert rows[-1]["tpr_filter"] != "" and (results / "study-curves.png").is_file()
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "finished" not in again.stdout  # nothing left to run
