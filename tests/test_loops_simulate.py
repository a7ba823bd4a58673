"""simulate() end to end: determinism, checkpoint/resume, output files, and the `simulate` command."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from loops import SimConfig, simulate
from loops.cli import simulate as simulate_command
from loops.outputs.summary import without_timings

SMALL = SimConfig(loop="fresh", contamination=0.5, filter="probe", repeats=3, generations=6, samples_per_gen=30)


class Interrupt(Exception):
    pass


def test_same_seed_same_rows_and_a_run_reproduces_alone():
    first = without_timings(simulate(SMALL).rows)
    assert without_timings(simulate(SMALL).rows) == first
    alone = without_timings(simulate(replace(SMALL, seed=2, repeats=1)).rows)
    assert [{**r, "config": ""} for r in alone] == [{**r, "config": ""} for r in first if r["seed"] == 2]
    assert without_timings(simulate(replace(SMALL, seed=5)).rows) != first


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        SimConfig(loop="accumulate", repeats=2, generations=6, samples_per_gen=20),
        SimConfig(
            model="gmm", loop="augment", components=3, repeats=2, generations=6, samples_per_gen=60, filter="all"
        ),
    ],
)
def test_interrupted_run_resumes_with_identical_results(tmp_path, config):
    whole = simulate(config)

    def stop_after_generation_3(done, total):
        if done == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        simulate(config, out=tmp_path / "cut", progress=stop_after_generation_3)
    seen = []
    resumed = simulate(config, out=tmp_path / "cut", resume=True, progress=lambda done, total: seen.append(done))
    assert without_timings(resumed.rows) == without_timings(whole.rows)
    assert seen == list(range(1, config.generations + 2))  # restored generations are reported too
    saved = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert without_timings(saved) == json.loads(json.dumps(without_timings(whole.rows)))


def test_resume_with_other_settings_is_refused(tmp_path):
    from loops.outputs.checkpoint import CheckpointMismatch

    simulate(SMALL, out=tmp_path)
    with pytest.raises(CheckpointMismatch, match="other settings"):
        simulate(replace(SMALL, bias=0.9), out=tmp_path, resume=True)


def test_a_crash_between_rows_and_state_loses_nothing(tmp_path):
    """A rows line appended without its state.json (a crash in between) is cut off on the next save."""
    whole = simulate(SMALL).rows
    with pytest.raises(Interrupt):
        simulate(
            SMALL, out=tmp_path, progress=lambda done, total: (_ for _ in ()).throw(Interrupt) if done == 3 else None
        )
    rows_file = tmp_path / "checkpoint" / "config-000" / "rows.jsonl"
    with open(rows_file, "a") as f:
        f.write('[{"half": "a line')
    assert without_timings(simulate(SMALL, out=tmp_path, resume=True).rows) == without_timings(whole)


def test_outputs_and_ground_truth_counts(tmp_path):
    result = simulate(SimConfig(repeats=2, generations=3, samples_per_gen=40), preset=True, out=tmp_path)
    names = {c["label"] for c in result.summary["configs"]}
    assert names == {
        "fully-synthetic",
        "fresh c=0.5",
        "fresh c=0.5 filter=watermark",
        "fresh c=0.5 filter=oracle",
        "accumulate",
    }
    assert len(result.rows) == 5 * 2 * 4
    for name in ("metrics.csv", "metrics.json", "summary.json", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(result.rows)
    assert {"w2", "fid", "precision", "recall", "density", "coverage", "mean_shift", "var_ratio"} <= set(table[0])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final"]["fully-synthetic"]["generation"] == 3
    by = {(r["config"], r["generation"], r["seed"]): r for r in result.rows}
    assert by[("fully-synthetic", 2, 0)]["kept_synthetic"] == 40 and by[("fully-synthetic", 2, 0)]["kept_real"] == 0
    assert by[("fresh c=0.5 filter=oracle", 2, 1)]["kept_synthetic"] == 0
    assert by[("fresh c=0.5 filter=oracle", 2, 1)]["pool_synthetic"] == 20
    assert by[("accumulate", 3, 0)]["pool_synthetic"] == 120 and by[("accumulate", 3, 0)]["pool_real"] == 40
    watermark = [r["kept_synthetic"] for r in result.rows if r["config"].endswith("watermark") and r["generation"]]
    assert 0 < np.mean(watermark) < 20  # about half of the 20 synthetic items are caught


def test_cli_default_runs_the_preset_and_prints_its_table(tmp_path):
    result = CliRunner().invoke(simulate_command, ["--out", str(tmp_path), "--generations", "2", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    for name in ("fully-synthetic", "fresh c=0.5 filter=watermark", "accumulate", "W2", "FID", "cover"):
        assert name in result.output
    assert (tmp_path / "curves.png").exists()


def test_cli_contamination_and_watermark_filter_json(tmp_path):
    result = CliRunner().invoke(
        simulate_command,
        [
            "--contamination",
            "0.4",
            "--filter",
            "watermark",
            "--generations",
            "2",
            "--out",
            str(tmp_path),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    control, baseline, config = summary["configs"]  # every run carries the all-real control and the baseline
    assert (config["loop"], config["contamination"], config["filter"]) == ("fresh", 0.4, "watermark")
    assert (config["filter_tpr"], config["filter_fpr"]) == (0.5, 0.0)
    assert (baseline["contamination"], baseline["filter"], control["contamination"]) == (0.4, "none", 0.0)
    assert summary["roles"] == {
        "all-real control": "control",
        "fresh c=0.4": "baseline",
        "fresh c=0.4 filter=watermark": "mitigation",
    }
    assert config["bias"] == 0.7  # the stated default scenario (MAD's lambda)
    assert summary["verdict"].startswith("After 2 generations at contamination 0.4 (fresh), quality ")
    assert "Filter watermark (TPR 0.5, FPR 0) recovers" in summary["verdict"]
    alone = CliRunner().invoke(
        simulate_command,
        [
            "--contamination",
            "0.4",
            "--filter",
            "watermark",
            "--no-baseline",
            "--generations",
            "1",
            "--out",
            str(tmp_path),
            "--format",
            "json",
        ],
    )
    assert [c["label"] for c in json.loads(alone.stdout)["configs"]] == ["fresh c=0.4 filter=watermark"]
    assert json.loads(alone.stdout)["verdict"].startswith("No verdict")


def test_cli_table_explains_the_run(tmp_path):
    """The first lines say what ran and what the filter means; directions, a legend and the verdict."""
    result = CliRunner().invoke(
        simulate_command,
        [
            "--contamination",
            "0.4",
            "--filter",
            "watermark",
            "--generations",
            "3",
            "--repeats",
            "3",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("World: 2-D standard Gaussian points (a toy, no images); backend: a Gaussian refit")
    assert "λ = 0.7" in lines[0]
    assert any(
        "Filter watermark: removes each synthetic item with probability TPR 0.5" in line and "assumed default" in line
        for line in lines
    )
    for column in ("FID ↓", "recall ↑", "coverage ↑", "kept real/synth", "all-real control", "fresh c=0.4 "):
        assert column in result.stdout, column
    assert "recall ↑: share of real data the samples reach (diversity)" in result.stdout
    assert (
        result.stdout.rstrip().splitlines()[-1].startswith("Verdict: After 3 generations")
        or "Verdict: After 3 generations" in result.stdout
    )
    html = (tmp_path / "report.html").read_text()
    assert "<strong>Verdict.</strong> After 3 generations" in html


def test_cli_rates_file_sweep_and_notes(tmp_path):
    rates = tmp_path / "calibration.json"
    rates.write_text(json.dumps({"detectors": {"probe": {"tpr": 0.25, "fpr": 0.0}}}))
    result = CliRunner().invoke(
        simulate_command,
        [
            "--filter",
            "probe",
            "--filter-rates",
            str(rates),
            "--sweep",
            "loop=fresh,fully-synthetic",
            "--contamination",
            "0.5",
            "--generations",
            "1",
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [c["filter_tpr"] for c in summary["configs"] if c["filter"] == "probe"] == [0.25, 0.25]
    assert any("measured: from the --filter-rates file" in line for line in summary["explanation"])
    assert any("ignored" in note for note in summary["notes"])
    assert "note:" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loop", "sideways"], "Invalid value for '--loop'"),
        (["--sweep", "colour=red"], "cannot sweep 'colour'"),
        (["--filter", "none", "--filter-tpr", "0.5"], "do not apply"),
        (["--filter-rates", "/nonexistent/calibration.json", "--filter", "probe"], "cannot read"),
        (["--filter", "probe", "--filter-fpr", "1"], "at least 2 items"),
        (["--metrics", "fid,vibes"], "--metrics 'vibes'"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    result = CliRunner().invoke(simulate_command, [*args, "--out", str(tmp_path), "--generations", "1"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_resume_mismatch_is_a_usage_error(tmp_path):
    runner = CliRunner()
    assert (
        runner.invoke(simulate_command, ["--loop", "fresh", "--generations", "1", "--out", str(tmp_path)]).exit_code
        == 0
    )
    result = runner.invoke(
        simulate_command, ["--loop", "augment", "--generations", "1", "--out", str(tmp_path), "--resume"]
    )
    assert result.exit_code == 2 and "other settings" in result.output


@pytest.mark.slow
def test_speed_500_runs_100_generations():
    import time

    started = time.perf_counter()
    simulate(SimConfig(loop="fully-synthetic", repeats=500, generations=100, metrics=("moments",)))
    assert time.perf_counter() - started < 10
