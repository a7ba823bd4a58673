"""audit/estimate.py: the formulas on hand-computable cases, interval coverage on simulated detector
outputs with known TPR/FPR, degenerate calibrations, the CI gate, and `audit scan --calibration`."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from scipy.stats import binom

from audit import ScanConfig
from audit.calibrate import rates
from audit.cli import main
from audit.estimate import ScanEvidence, clopper_pearson, corrected_estimate, em_prior, rogan_gladen, scan_estimate
from audit.report.gate import gate_checks
from tests.conftest import noise_image


def operating_point(tp: int, fn: int, fp: int, tn: int) -> dict:
    """What `audit calibrate` writes for these counts."""
    return rates(
        np.r_[np.ones(tp), np.zeros(fn), np.ones(fp), np.zeros(tn)].astype(bool),
        np.r_[np.ones(tp + fn), np.zeros(fp + tn)].astype(int),
    )


def calibration(
    tp: int,
    fn: int,
    fp: int,
    tn: int,
    hard_tp: int = 0,
    hard_fp: int = 0,
    train_prior: float | None = None,
    soft: tuple[float, float] | None = None,
) -> dict:
    """The parts of calibration.json the estimator and the report read (detectors: metadata, watermark);
    `soft`: the probe's mean probability on synthetic and real images without hard evidence (variance 0.04)."""
    result = {
        "detectors": {"metadata": {}, "watermark": {}},
        "hard_evidence": operating_point(hard_tp, tp + fn, hard_fp, fp + tn),
        "combined_rest": operating_point(tp, fn, fp, tn),
        "probe": {"train_prior": train_prior} if train_prior else {"skipped": "no probe"},
    }
    if soft:
        result["soft_rest"] = {
            "synthetic": {"n": tp + fn, "mean": soft[0], "variance": 0.04},
            "real": {"n": fp + tn, "mean": soft[1], "variance": 0.04},
        }
    return result


def flags(hard: int, flagged_rest: int, unflagged: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image hard-evidence and combined-rule flags for the given cell counts, and no probe scores."""
    n = hard + flagged_rest + unflagged
    is_hard = np.arange(n) < hard
    return is_hard, np.arange(n) < hard + flagged_rest, np.full(n, np.nan)


def test_clopper_pearson_hand_values():
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025**0.1))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025**0.1), 1.0)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_clopper_pearson_equals_scipy_stats_beta_quantiles():
    """Computed without importing scipy.stats, yet bit for bit its beta quantiles."""
    from scipy.stats import beta

    for n in (1, 2, 7, 30, 101, 1000, 123_457):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for confidence in (0.9, 0.95, 0.99):
                alpha = 1 - confidence
                low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
                high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
                assert clopper_pearson(k, n, confidence) == (low, high), (k, n, confidence)


def test_rogan_gladen_hand_cases():
    assert rogan_gladen(0.5, 0.9, 0.1) == pytest.approx(0.5)
    assert rogan_gladen(0.05, 0.9, 0.1) == 0.0  # clipped: fewer flags than false positives alone
    assert rogan_gladen(0.95, 0.9, 0.1) == 1.0
    assert rogan_gladen(0.5, 0.3, 0.3) is None and rogan_gladen(0.5, 0.2, 0.3) is None
    assert rogan_gladen(None, 0.9, 0.1) is None and rogan_gladen(0.5, None, 0.1) is None


def test_hard_evidence_counts_as_known_positives_and_only_the_rest_is_corrected():
    # 100 images: 10 with hard evidence, 30 flagged without it, 60 neither. Among images without hard
    # evidence TPR = 0.8, FPR = 0.1: rho = (30/90 - 0.1) / 0.7 = 1/3, so pi = (10 + 90/3) / 100 = 0.4.
    e = corrected_estimate(*flags(10, 30, 60), calibration(tp=80, fn=20, fp=10, tn=90))
    assert e["point"] == pytest.approx(0.4)
    assert e["lower_bound"] == pytest.approx(0.1) and e["flagged_fraction"] == pytest.approx(0.4)
    low, high = e["interval"]
    assert 0.1 < low < 0.4 < high < 0.7
    assert e["separable"] and not any("cannot separate" in w or "Hard evidence" in w for w in e["warnings"])
    assert e["operating_points"]["tpr_minus_fpr"] == pytest.approx(0.7)
    assert not e["is_lower_bound"] and e["cross_check"]["point"] is None


def test_em_is_saerens_fixed_point_and_recovers_the_prior():
    assert em_prior(np.array([0.9, 0.1]), 0.5) == pytest.approx(0.5)  # symmetric: the prior stays
    assert em_prior(np.array([0.99, 0.98]), 0.5) == 1.0

    rng = np.random.default_rng(7)
    z = rng.standard_normal(20_000) + np.where(rng.random(20_000) < 0.2, 1.0, -1.0)
    p = 1 / (1 + np.exp(-2 * z))  # calibrated posteriors at a balanced training prior
    prior = 0.5
    for _ in range(5000):  # Saerens et al. 2002, as published
        w1, w0 = prior / 0.5 * p, (1 - prior) / 0.5 * (1 - p)
        prior = float(np.mean(w1 / (w1 + w0)))
    assert em_prior(p, 0.5) == pytest.approx(prior, abs=1e-6)
    assert em_prior(p, 0.5) == pytest.approx(0.2, abs=0.02)


def test_em_cross_check_uses_probe_scores_of_images_without_hard_evidence():
    hard, flagged, _ = flags(10, 30, 60)
    scores = np.r_[np.zeros(10), np.full(45, 0.9), np.full(45, 0.1)]  # hard images' scores are ignored
    e = corrected_estimate(
        hard, flagged, scores, calibration(tp=80, fn=20, fp=10, tn=90, train_prior=0.5, soft=(0.8, 0.2))
    )
    assert e["cross_check"]["rest_fraction"] == pytest.approx(0.5)
    assert e["cross_check"]["point"] == pytest.approx((10 + 45) / 100)
    assert e["cross_check"]["scored_images"] == 90


def test_a_million_images_take_well_under_seconds_and_are_deterministic():
    rng = np.random.default_rng(0)
    n = 1_000_000
    hard = rng.random(n) < 0.05
    flagged = hard | (rng.random(n) < 0.2)
    scores = rng.random(n)
    calib = calibration(tp=400, fn=100, fp=40, tn=460, hard_tp=200, train_prior=0.5)
    start = time.perf_counter()
    first = corrected_estimate(hard, flagged, scores, calib)
    assert time.perf_counter() - start < 5.0  # 1,000 resamples; per-image resampling would take minutes
    assert corrected_estimate(hard, flagged, scores, calib) == first


def test_interval_covers_the_true_fraction_at_the_nominal_rate():
    """300 mixes with a fresh calibration set each; the calibration's uncertainty dominates (300
    images per class against 20,000 scanned), so an interval that ignored it would cover ~30%."""
    rng = np.random.default_rng(2024)
    mixes, n_cal, n_scan, pi, hard_share, tpr, fpr = 300, 300, 20_000, 0.2, 0.3, 0.85, 0.08
    covered = 0
    for m in range(mixes):
        hard_syn = int(rng.binomial(n_cal, hard_share))
        tp = int(rng.binomial(n_cal - hard_syn, tpr))
        fp = int(rng.binomial(n_cal, fpr))
        calib = calibration(tp=tp, fn=n_cal - hard_syn - tp, fp=fp, tn=n_cal - fp, hard_tp=hard_syn)
        synthetic = rng.random(n_scan) < pi
        hard = synthetic & (rng.random(n_scan) < hard_share)
        flagged = hard | (synthetic & (rng.random(n_scan) < tpr)) | (~synthetic & (rng.random(n_scan) < fpr))
        low, high = corrected_estimate(hard, flagged, np.full(n_scan, np.nan), calib, seed=m)["interval"]
        covered += low <= pi <= high
    assert binom.ppf(0.001, mixes, 0.95) <= covered <= binom.ppf(0.999, mixes, 0.95)


@pytest.mark.parametrize(
    "counts, why",
    [
        ({"tp": 40, "fn": 60, "fp": 40, "tn": 60}, "95% CI"),  # TPR = FPR
        ({"tp": 10, "fn": 90, "fp": 50, "tn": 50}, "95% CI"),  # TPR < FPR: the ratio would look plausible (0.5)
        ({"tp": 0, "fn": 100, "fp": 0, "tn": 100}, "95% CI"),  # only hard-evidence detectors: nothing else flags
        ({"tp": 0, "fn": 0, "fp": 5, "tn": 95}, "no synthetic image without hard evidence"),
    ],
)
def test_degenerate_calibration_gives_the_whole_interval_and_a_warning(counts, why):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division warnings either
        e = corrected_estimate(*flags(0, 30, 70), calibration(**counts))
    assert e["point"] is None and e["interval"] == [0.0, 1.0]
    assert not e["separable"] and "cannot separate" in e["warnings"][0] and why in e["warnings"][0]
    assert "no point estimate" in e["warnings"][0]


def test_poor_separation_widens_the_interval_and_warns():
    scan = flags(50, 200, 750)
    good = corrected_estimate(*scan, calibration(tp=90, fn=10, fp=10, tn=90))
    poor = corrected_estimate(*scan, calibration(tp=56, fn=44, fp=50, tn=50))  # TPR - FPR = 0.06
    width = {name: e["interval"][1] - e["interval"][0] for name, e in (("good", good), ("poor", poor))}
    assert good["separable"] and width["good"] < 0.15
    assert not poor["separable"] and poor["warnings"] and width["poor"] > 0.8
    assert poor["interval"][0] <= poor["lower_bound"] + 0.02  # down to about the hard-evidence share


def test_the_interval_is_never_narrower_than_its_warning_says():
    e = corrected_estimate(*flags(0, 0, 3), calibration(tp=56, fn=44, fp=50, tn=50))
    assert not e["separable"] and "widened to" in e["warnings"][0]
    assert e["interval"] == [e["lower_bound_interval"][0], 1.0]


def test_hard_evidence_on_real_calibration_images_is_reported():
    e = corrected_estimate(*flags(10, 30, 60), calibration(tp=80, fn=20, fp=10, tn=90, hard_fp=2))
    assert any("lower bound is not guaranteed" in w for w in e["warnings"])


def rows(hard: int, flagged_rest: int, unflagged: int) -> ScanEvidence:
    evidence = ScanEvidence()
    evidence.add(*flags(hard, flagged_rest, unflagged))
    return evidence


def test_without_a_matching_calibration_the_count_is_uncorrected_and_says_why():
    config = ScanConfig(detectors=("metadata", "watermark"))
    e = scan_estimate(rows(2, 0, 8), ["metadata", "watermark"], None, config)
    assert e["method"] == "hard-evidence count (uncorrected)" and e["is_lower_bound"]
    assert e["point"] == e["flagged_fraction"] == pytest.approx(0.2) and e["operating_points"] is None
    assert e["note"].startswith("No calibration given")

    other = {**calibration(tp=80, fn=20, fp=10, tn=90), "detectors": {"metadata": {}, "watermark": {}, "probe": {}}}
    e = scan_estimate(rows(2, 0, 8), ["metadata", "watermark"], other, config)
    assert e["operating_points"] is None and "combined rule differs" in e["note"]

    old = {key: value for key, value in calibration(tp=80, fn=20, fp=10, tn=90).items() if key != "combined_rest"}
    assert "re-run `audit calibrate`" in scan_estimate(rows(2, 0, 8), ["metadata", "watermark"], old, config)["note"]


def summary_with(point: float | None, interval: list[float]) -> dict:
    return {
        "source": "src",
        "counts": {"total": 100, "ok": 100, "error": 0, "flagged": 5, "hard_evidence": 2},
        "estimate": {
            "point": point,
            "interval": interval,
            "confidence": 0.95,
            "method": "test",
            "warnings": ["detectors cannot separate"],
        },
        "errors": {"count": 0, "by_reason": {}},
        "detectors": ["metadata"],
        "skipped_detectors": {},
    }


def test_gate_on_the_point_or_the_upper_bound():
    summary = summary_with(0.04, [0.02, 0.07])
    assert gate_checks(summary, 0.05)[1]["passed"]
    upper = gate_checks(summary, 0.05, gate="upper")[1]
    assert not upper["passed"] and upper["name"] == "upper 95% bound of the synthetic fraction <= 0.05"
    none = gate_checks(summary_with(None, [0.0, 1.0]), 0.5)[1]
    assert not none["passed"] and "no point estimate" in none["message"] and "cannot separate" in none["message"]
    with pytest.raises(ValueError):
        gate_checks(summary, 0.05, gate="median")


@pytest.fixture()
def calibrated_scan(tmp_path):
    """A folder (4 real images, 1 with AUTOMATIC1111 metadata) and a hand-written calibration."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        noise_image((64, 64), seed=i).save(source / f"real_{i}.png")
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, Seed: 1")
    Image.new("RGB", (64, 64), "white").save(source / "a1111.png", pnginfo=info)
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "calibration.json").write_text(json.dumps(calibration(tp=50, fn=50, fp=0, tn=100, hard_tp=100)))
    return source, calib


def test_scan_with_calibration_reports_and_gates_the_corrected_estimate(calibrated_scan, tmp_path):
    source, calib = calibrated_scan
    runner = CliRunner()
    args = [
        "scan",
        str(source),
        "--calibration",
        str(calib),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "0",
        "--quiet",
        "--detectors",
        "metadata,watermark",
        "--overwrite",
    ]
    result = runner.invoke(main, args + ["--format", "json", "--fail-above", "0.25"])
    assert result.exit_code == 0, result.output
    e = json.loads(result.stdout)["estimate"]
    assert e["point"] == pytest.approx(1 / 5)  # the hard-evidence image; nothing else flagged, FPR 0
    assert e["method"].startswith("adjusted classify-and-count") and e["operating_points"]["rest"]["tp"] == 50
    assert e["interval"][1] > 0.25 and e["lower_bound"] == pytest.approx(1 / 5)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "estimated synthetic fraction 20.00%" in report and "Operating point used" in report

    assert runner.invoke(main, args + ["--fail-above", "0.25", "--gate", "upper"]).exit_code == 1
    assert runner.invoke(main, args + ["--gate", "lowest"]).exit_code == 2
