"""`audit advise`: the recommendation moves the expected way when the contamination rises or the
detector's TPR falls; it works from `--contamination`, from a scan summary (a real scan when the
data is present) and with the diffusion backend; costs and outputs."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from loops import advise
from loops.advise.cli import advise as advise_command
from loops.advise.policies import Costs, Policy
from loops.config import scenario
from tests.conftest import shared_data

# Fast and steady: W2 is computed in closed form from the model (no sampling noise).
FAST = replace(scenario(), generations=10, repeats=40)


def _cost(**kwargs) -> float:
    return advise(config=FAST, metric="w2", **kwargs).point.recommended.cost["cost"]


def test_more_contamination_needs_a_costlier_policy():
    low, high = _cost(contamination=0.2), _cost(contamination=0.7)
    assert low < high


def test_a_weaker_detector_needs_a_costlier_policy():
    strong = _cost(contamination=0.5, detectors=("watermark",), filter_rates={"watermark": (0.95, 0.0)})
    weak = _cost(contamination=0.5, detectors=("watermark",), filter_rates={"watermark": (0.3, 0.0)})
    assert strong < weak


def test_cheapest_within_tolerance_and_costs_are_explicit():
    advice = advise(0.5, config=FAST, metric="w2", detectors=("watermark",), costs=Costs(fresh=2.0, discard=0.5))
    table = advice.point.evaluated
    assert [e.cost["cost"] for e in table] == sorted(e.cost["cost"] for e in table)
    rec = advice.point.recommended
    assert rec.quality.within(0.1) and all(not e.quality.within(0.1) for e in table if e.cost["cost"] < rec.cost["cost"])
    n = advice.settings.base.samples_per_gen
    for e in table:
        assert e.cost["fresh_real"] == pytest.approx(e.policy.fresh * n)
        assert e.cost["cost"] == pytest.approx(2.0 * e.cost["fresh_real"] + 0.5 * e.cost["discarded"])
    watermark = next(e for e in table if e.policy == Policy(filter="watermark"))
    assert 0 < watermark.cost["discarded"] < 0.5 * n  # about TPR 0.5 of the 50 synthetic items
    assert advice.robust is None and "one contamination was given" in advice.conclusion()


def test_cli_from_a_scan_summary_writes_advice_and_report(tmp_path):
    scan = tmp_path / "scan" / "summary.json"
    scan.parent.mkdir()
    scan.write_text(json.dumps({"estimate": {"point": 0.4, "interval": [0.1, 0.6], "lower_bound": 0.25}, "config": {}}))
    result = CliRunner().invoke(advise_command, ["--from-scan", str(scan), "--generations", "8", "--repeats", "30",
                                                 "--metric", "w2", "--detectors", "watermark,probe",
                                                 "--out", str(tmp_path / "adv"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Advice: At contamination 0.4 (point estimate)" in result.stdout
    assert ("Robust:" in result.stdout) or ("Depends on the estimate:" in result.stdout)
    saved = json.loads((tmp_path / "adv" / "advice.json").read_text())
    assert [c["contamination"] for c in saved["contaminations"]] == [0.25, 0.4, 0.6]  # never below the bound
    assert saved["recommended"]["within_tolerance"] is True
    html = (tmp_path / "adv" / "report.html").read_text()
    assert "Advice: the least costly policy that keeps quality" in html and "<strong>Verdict.</strong>" in html


def test_cli_usage_errors(tmp_path):
    runner = CliRunner()
    both = runner.invoke(advise_command, ["--out", str(tmp_path)])
    assert both.exit_code == 2 and "give one of --contamination and --from-scan" in both.output
    bad = runner.invoke(advise_command, ["--contamination", "0.3", "--detectors", "tea", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown tea" in bad.output


def test_advise_from_a_real_scan_with_a_calibration(tmp_path):
    """A real scan of watermarked and real images with a calibration: its estimate and operating points."""
    import audit
    from audit.calibrate import calibrate

    marked, real = shared_data("ai-watermark"), shared_data("real-kodak")
    folders = {"synthetic": sorted(p for p in marked.iterdir() if p.name.startswith("sd1__"))[:6],
               "real": sorted(p for p in real.iterdir() if p.suffix.lower() in (".png", ".jpg"))[:6]}
    for name, paths in folders.items():
        (tmp_path / name).mkdir()
        for path in paths:
            (tmp_path / name / path.name).write_bytes(path.read_bytes())
            (tmp_path / "mixed").mkdir(exist_ok=True)
            (tmp_path / "mixed" / path.name).write_bytes(path.read_bytes())
    config = audit.ScanConfig(detectors=("metadata", "watermark"), embedder="none")
    calibrate(str(tmp_path / "real"), str(tmp_path / "synthetic"), tmp_path / "calib", config=config, workers=0)
    scan = audit.scan(str(tmp_path / "mixed"), out=tmp_path / "scan",
                      config=replace(config, calibration=str(tmp_path / "calib")), workers=0)
    advice = advise(from_scan=tmp_path / "scan", config=FAST, metric="w2", detectors=("watermark",))
    low = scan.summary["estimate"]["interval"][0]  # corrected: its interval is used as it is (loops/from_scan.py)
    assert min(r.contamination for r in advice.results) >= round(low, 4) - 1e-9
    assert advice.point.recommended is not None
    assert "calibration.json" in (advice.from_scan["operating_points_from"] or "calibration.json")


@pytest.mark.slow
def test_advise_with_the_diffusion_backend_on_a_tiny_preset(tmp_path):
    from tests.test_loops_diffusion import _digit_folder

    dataset = _digit_folder(tmp_path / "digits")
    config = replace(scenario(), dataset=dataset, bias=1.0, samples_per_gen=40, test_size=30, generations=1,
                     repeats=1, train_steps=3, sample_steps=2, probe_embedder="random:tiny", probe_size=20)
    advice = advise(0.5, config=config, detectors=("watermark",), fresh_grid=(0.5, 1.0), fresh_step=0.25,
                    max_quality_loss=0.5)
    assert advice.settings.base.model == "diffusion"
    assert advice.point.recommended is not None
    assert {e.policy for e in advice.point.evaluated} >= {Policy(), Policy(filter="watermark")}
