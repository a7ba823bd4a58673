"""The built-in demo: every marked copy is found with its generator, every re-shared copy (mark lost)
by the bank of the real CLIP encoder, and no real photo is flagged."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from audit.cli import main


def test_demo_finds_exactly_the_marked_copies(tmp_path, clip_encoder):
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    labels = {row["file"]: row["label"] for row in csv.DictReader(open(tmp_path / "images" / "labels.csv"))}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    marked = sum(1 for label in labels.values() if label == "marked")
    errors = sum(1 for label in labels.values() if label == "error")
    assert summary["counts"] == {
        "total": len(labels),
        "ok": len(labels) - errors,
        "error": errors,
        "flagged": marked,
        "hard_evidence": marked,
    }
    assert sum(summary["per_tool"].values()) == marked and len(summary["per_generator"]) >= 3  # each names a tool
    reshared = sum(1 for name in labels if name.startswith("reshared/"))
    assert reshared and summary["per_tool"]["bank:demo-marked"] == reshared
    assert summary["config"]["embedder"] == clip_encoder
    assert "DEMO" in (tmp_path / "images" / "DEMO_README.txt").read_text()
    again = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), "--quiet"])  # `make demo` twice
    assert again.exit_code == 0, again.output
