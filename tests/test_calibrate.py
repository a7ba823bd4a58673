"""`audit calibrate` on real labelled data (photographs vs images with generator metadata), and
`audit scan --calibration` using what it wrote."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from audit.cli import main
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    real, synthetic = shared_data("real-kodak"), shared_data("ai-metadata")
    out = tmp_path_factory.mktemp("calib")
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            "--real",
            str(real),
            "--synthetic",
            str(synthetic),
            "--out",
            str(out),
            "--embedder",
            "random",
            "--quiet",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "calibration.json").read_text())


def test_counts_add_up(calibration):
    _, calib = calibration
    for label, n in (("real", 24), ("synthetic", 33)):
        c = calib["counts"][label]
        assert c["scanned"] == n and c["train"] + c["heldout"] + c["errors"] == n
        assert c["heldout"] == round(0.3 * n)
    for point in [*calib["detectors"].values(), calib["combined"]]:
        assert point["tp"] + point["fn"] == point["n_synthetic"] == calib["counts"]["synthetic"]["heldout"]
        assert point["fp"] + point["tn"] == point["n_real"] == calib["counts"]["real"]["heldout"]
        low, high = point["tpr_interval"]
        assert low <= point["tpr"] <= high


def test_operating_points_match_the_data(calibration):
    _, calib = calibration
    metadata, combined = calib["detectors"]["metadata"], calib["combined"]
    assert metadata["tpr"] == 1.0 and metadata["fpr"] == 0.0  # every image in ai-metadata carries metadata
    assert combined["tpr"] >= metadata["tpr"] and combined["fpr"] >= metadata["fpr"]
    assert set(calib["detectors"]) == {"metadata", "watermark", "probe"}
    assert calib["probe"]["metrics"]["heldout_count"] == metadata["n_synthetic"] + metadata["n_real"]
    assert any("MEANINGLESS" in note for note in calib["notes"])


def test_estimation_inputs(calibration):
    out, calib = calibration
    hard, rest, counts = calib["hard_evidence"], calib["combined_rest"], calib["counts"]
    assert hard["tpr"] == 1.0 and hard["fpr"] == 0.0  # every ai-metadata image carries metadata, no photo does
    assert (hard["n_synthetic"], hard["n_real"]) == (counts["synthetic"]["heldout"], counts["real"]["heldout"])
    assert (rest["n_synthetic"], rest["n_real"]) == (hard["fn"], hard["tn"])  # held-out images without hard evidence
    trained = counts["synthetic"]["train"], counts["real"]["train"]
    assert calib["probe"]["train_prior"] == pytest.approx(trained[0] / sum(trained))

    items = pq.read_table(out / "calibration_items.parquet").to_pylist()
    heldout = [i for i in items if i["heldout"]]
    assert len(items) == sum(c["train"] + c["heldout"] for c in counts.values())
    assert len(heldout) == hard["n_synthetic"] + hard["n_real"]
    assert sum(i["hard_evidence"] for i in heldout if i["label"] == 1) == hard["tp"]
    assert sum(i["flagged"] for i in heldout if i["label"] == 0 and not i["hard_evidence"]) == rest["fp"]
    assert all(i["probe_score"] is not None for i in items)


def test_scan_uses_the_calibration(calibration, tmp_path):
    out, calib = calibration
    source = shared_data("real-vs-derived")
    result = CliRunner().invoke(
        main, ["scan", str(source), "--calibration", str(out), "--out", str(tmp_path), "--quiet", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["detectors"] == ["metadata", "watermark", "probe"]
    assert summary["calibration"]["combined"] == calib["combined"]
    assert summary["config"]["embedder"] == "random"  # taken from the calibrated probe
    e = summary["estimate"]
    # No held-out synthetic image lacked hard evidence, so nothing says how often the detectors find
    # such images: no point estimate, and the interval reaches 1.
    assert e["point"] is None and e["interval"][1] == 1.0 and not e["separable"]
    assert "no synthetic image without hard evidence" in e["warnings"][0]
    assert e["operating_points"]["rest"] == calib["combined_rest"]


def test_calibrate_reports_bad_sources(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            "--real",
            str(tmp_path / "nope"),
            "--synthetic",
            str(tmp_path),
            "--out",
            str(tmp_path / "c"),
            "--quiet",
        ],
    )
    assert result.exit_code == 2 and "source not found" in result.output


def test_probe_statistics_and_generator_shift_are_written(calibration):
    out, calib = calibration
    soft = calib["soft_rest"]
    assert (
        soft["synthetic"]["n"] + soft["real"]["n"]
        == calib["combined_rest"]["n_synthetic"] + calib["combined_rest"]["n_real"]
    )
    assert 0 <= soft["real"]["mean"] <= 1 and 0 <= soft["real"]["variance"] <= 0.25
    shift = calib["shift"]  # every synthetic image here names its generator in metadata, i.e. has hard evidence
    assert shift["tpr_drop"] is None and "generators" in shift
    items = pq.read_table(out / "calibration_items.parquet").to_pydict()
    named = [g for g, label in zip(items["generator"], items["label"]) if label == 1]
    assert any(named) and all(g is None for g, label in zip(items["generator"], items["label"]) if label == 0)
