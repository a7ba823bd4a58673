"""The estimator on what real scans meet: hard evidence with false positives, PACC on probe probabilities,
the gated EM cross-check, small calibrations, generator shift (the sensitivity band and calibrate's
leave-one-generator-out measurement) and the calibration file's new fields."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from audit.calibrate import generator_shift
from audit.detectors.probe import train_probe
from audit.engine.user_files import UserFileError, check_calibration
from audit.estimate import DEFAULT_SHIFT, Soft, corrected_estimate, synthetic_fraction
from tests.test_estimate import calibration, flags


def test_hard_evidence_false_positives_are_subtracted_by_hand():
    # 100 real calibration images: 5 with hard evidence (h_r = 0.05), 10 of the other 95 flagged; synthetic:
    # TPR 0.8. Scan: 10 hard, 30 flagged without, 60 neither: rho = (30/90 - 10/95) / (0.8 - 10/95) and
    # pi = (0.10 - 0.05 + rho * 0.90) / 0.95.
    e = corrected_estimate(*flags(10, 30, 60), calibration(tp=80, fn=20, fp=10, tn=85, hard_fp=5))
    rho = (30 / 90 - 10 / 95) / (0.8 - 10 / 95)
    assert e["estimators"]["rg"]["rest_fraction"] == pytest.approx(rho)
    assert e["point"] == pytest.approx((0.10 - 0.05 + rho * 0.90) / 0.95)
    assert e["operating_points"]["real_hard_evidence_rate"] == pytest.approx(0.05)
    assert e["lower_bound"] == pytest.approx(0.1)  # the hard share itself, its assumption spelled out
    assert e["lower_bound_assumes"].startswith("hard evidence has no false positives")
    assert "5 of 100 real images" in e["lower_bound_assumes"]
    assert any("lower bound is not guaranteed" in w and "subtracts" in w for w in e["warnings"])
    assert synthetic_fraction(0.01, 0.05, 0.0, 0.99) == 0.0  # fewer hard images than false positives: clipped


def clean_scan_covered(calibration_per_class: int, mixes: int, seed: int) -> int:
    """Clean scans (pi = 0) where 1% of real images carry hard evidence, each with a fresh calibration."""
    rng = np.random.default_rng(seed)
    covered, n_scan = 0, 5000
    for m in range(mixes):
        n = calibration_per_class
        hard_fp = int(rng.binomial(n, 0.01))
        fp = int(rng.binomial(n - hard_fp, 0.1))
        hard_tp = int(rng.binomial(n, 0.3))
        tp = int(rng.binomial(n - hard_tp, 0.85))
        calib = calibration(tp=tp, fn=n - hard_tp - tp, fp=fp, tn=n - hard_fp - fp, hard_tp=hard_tp, hard_fp=hard_fp)
        hard = rng.random(n_scan) < 0.01
        flagged = hard | (rng.random(n_scan) < 0.1)
        low, high = corrected_estimate(hard, flagged, np.full(n_scan, np.nan), calib, seed=m, resamples=400)["interval"]
        covered += low <= 0.0 <= high
    return covered


@pytest.mark.parametrize("per_class", [500, 50])
def test_clean_scans_with_hard_false_positives_are_covered(per_class):
    # Before h_r entered the estimate, the interval covered pi = 0 in 0 of 100 such scans.
    mixes = 120
    assert clean_scan_covered(per_class, mixes, seed=per_class) >= binom.ppf(0.001, mixes, 0.9)


def test_pacc_by_hand_and_preferred_when_it_separates():
    # Calibration: mean probability 0.8 on synthetic and 0.2 on real images without hard evidence.
    # Scan rest scores average 0.44: rho = (0.44 - 0.2) / 0.6 = 0.4; pi = (10 + 0.4 * 90) / 100.
    hard, flagged, _ = flags(10, 30, 60)
    scores = np.r_[np.full(10, 0.99), np.full(45, 0.68), np.full(45, 0.2)]
    e = corrected_estimate(hard, flagged, scores, calibration(tp=400, fn=100, fp=50, tn=450, soft=(0.8, 0.2)))
    assert e["estimator"] == "pacc" and e["method"].startswith("probabilistic adjusted count")
    assert e["estimators"]["pacc"]["rest_fraction"] == pytest.approx(0.4)
    assert e["point"] == pytest.approx(0.46)
    assert e["estimators"]["rg"]["point"] is not None and e["operating_points"]["soft"]["separation"] == pytest.approx(
        0.6
    )
    rg = corrected_estimate(
        hard, flagged, scores, calibration(tp=400, fn=100, fp=50, tn=450, soft=(0.8, 0.2)), method="rg"
    )
    assert rg["estimator"] == "rg" and rg["point"] == pytest.approx(e["estimators"]["rg"]["point"])


def test_falls_back_to_rg_when_the_probe_does_not_separate_and_gates_em():
    hard, flagged, _ = flags(10, 30, 60)
    scores = np.full(100, 0.5)
    calib = calibration(tp=400, fn=100, fp=50, tn=450, train_prior=0.5, soft=(0.51, 0.5))
    e = corrected_estimate(hard, flagged, scores, calib)
    assert e["estimator"] == "rg" and e["separable"]  # the flags separate, the probe's probabilities do not
    assert not e["estimators"]["pacc"]["separable"]
    assert e["cross_check"]["point"] is None and "do not separate" in e["cross_check"]["skipped"]
    shown = corrected_estimate(
        hard,
        flagged,
        np.r_[np.zeros(10), np.full(45, 0.9), np.full(45, 0.1)],
        calibration(tp=400, fn=100, fp=50, tn=450, train_prior=0.5, soft=(0.8, 0.2)),
    )
    assert shown["cross_check"]["point"] is not None
    old = corrected_estimate(hard, flagged, scores, calibration(tp=400, fn=100, fp=50, tn=450, train_prior=0.5))
    assert old["estimator"] == "rg" and "statistics of the probe" in old["cross_check"]["skipped"]


def test_inseparable_probe_no_longer_reports_em_near_one_on_clean_scans():
    rng = np.random.default_rng(3)
    n = 2000
    scores = 1 / (1 + np.exp(-0.1 * (rng.standard_normal(n) - 0.05)))  # ~0.5 for every image
    calib = calibration(tp=260, fn=240, fp=240, tn=260, train_prior=0.5, soft=(0.501, 0.499))
    e = corrected_estimate(np.zeros(n, bool), rng.random(n) < 0.48, scores, calib)
    assert e["cross_check"]["point"] is None and not e["separable"]


def test_small_calibrations_warn_with_their_resolution():
    scan = flags(0, 100, 900)
    small = corrected_estimate(*scan, calibration(tp=40, fn=10, fp=5, tn=45))
    large = corrected_estimate(*scan, calibration(tp=800, fn=200, fp=100, tn=900))
    warning = next(w for w in small["warnings"] if w.startswith("Small calibration"))
    assert "50 real and 50 synthetic" in warning and f"±{small['calibration_resolution']:.3f}" in warning
    assert small["calibration_resolution"] > 2 * large["calibration_resolution"] > 0
    assert not any(w.startswith("Small calibration") for w in large["warnings"])


def test_sensitivity_band_by_hand():
    # RG: TPR 0.8, FPR 0.1, q = 30/90. Upper end with TPR 0.1 lower: rho = (1/3 - 0.1) / 0.6; lower end with
    # FPR 0.1 higher: rho = (1/3 - 0.2) / 0.6 (nothing measured: both assumed, and said so).
    e = corrected_estimate(*flags(10, 30, 60), calibration(tp=800, fn=200, fp=100, tn=900))
    band = e["sensitivity"]
    assert band["tpr_drop"] == DEFAULT_SHIFT and band["source"].count("an assumed 0.10") == 2
    assert band["point"][0] == pytest.approx(0.1 + 0.9 * (1 / 3 - 0.2) / 0.6)
    assert band["point"][1] == pytest.approx(0.1 + 0.9 * (1 / 3 - 0.1) / 0.6)
    assert band["lower"] < e["interval"][0]
    assert band["upper"] > e["interval"][1] and "lower than calibrated" in band["note"]
    measured = {**calibration(tp=800, fn=200, fp=100, tn=900), "shift": {"tpr_drop": 0.2, "score_drop": 0.1}}
    band = corrected_estimate(*flags(10, 30, 60), measured)["sensitivity"]
    assert band["tpr_drop"] == 0.2 and band["point"][1] == pytest.approx(0.1 + 0.9 * (1 / 3 - 0.1) / 0.5)


def test_soft_draws_follow_the_normal_approximation():
    soft = Soft.of(np.r_[np.zeros(50), np.ones(50)])
    assert (soft.n, soft.mean, soft.variance) == (100, 0.5, 0.25)
    draws = soft.draw(np.random.default_rng(0), 20_000)
    assert draws.std() == pytest.approx(0.05, rel=0.05) and draws.min() >= 0
    assert np.isnan(Soft.of(np.array([])).draw(np.random.default_rng(0), 3)).all()


def test_leave_one_generator_out_finds_the_generator_the_probe_needs_to_have_seen():
    # Real images sit at the origin; generator "a" is shifted along axis 0, "b" along axis 1. A probe trained
    # on "a" alone cannot see "b": its TPR on "b" falls from ~1 to ~FPR.
    rng = np.random.default_rng(0)
    n = 120
    real = rng.normal(0, 1, (2 * n, 8))
    a, b = rng.normal(0, 1, (n, 8)), rng.normal(0, 1, (n, 8))
    a[:, 0] += 4
    b[:, 1] += 4
    x = np.c_[np.r_[real, a, b], np.full(4 * n, 6.0)]  # a constant axis keeps the L2 normalisation from folding classes
    y = np.r_[np.zeros(2 * n, int), np.ones(2 * n, int)]
    groups = [None] * (2 * n) + ["a"] * n + ["b"] * n
    is_heldout = rng.random(len(y)) < 0.3
    probe = train_probe(x[~is_heldout], y[~is_heldout], "random")
    scores = probe.probabilities(x)

    def retrain(mask):
        other = train_probe(x[mask], y[mask], "random")
        return other.probabilities(x), other.probabilities(x) >= other.threshold

    table = {"label": y, "hard": np.zeros(len(y), bool), "group": groups}
    decisions = {"probe": scores >= 0.5, "combined": scores >= 0.5}
    shift = generator_shift(table, is_heldout, decisions, {"scores": scores, "retrain": retrain})
    a_entry, b_entry = shift["generators"]["a"], shift["generators"]["b"]
    assert a_entry["tpr"] > 0.9 and b_entry["tpr"] > 0.9
    assert b_entry["tpr_unseen"] < 0.5 and a_entry["tpr_unseen"] < 0.5
    assert shift["tpr_drop"] == pytest.approx(
        shift["calibrated_tpr"] - min(a_entry["tpr_unseen"], b_entry["tpr_unseen"])
    )
    assert shift["score_drop"] > 0.3 and shift["measured"].startswith("leave one generator")
    alone = generator_shift(
        {**table, "group": [None] * (2 * n) + ["a"] * (2 * n)},
        is_heldout,
        decisions,
        {"scores": scores, "retrain": retrain},
    )
    assert alone["tpr_drop"] is None and "at least 2" in alone["skipped"]


def test_calibration_file_new_fields_are_checked(tmp_path):
    base = calibration(tp=80, fn=20, fp=10, tn=90, soft=(0.8, 0.2))
    path = tmp_path / "calibration.json"

    def check(data: dict):
        path.write_text(json.dumps(data))
        return check_calibration(path)

    assert check({**base, "shift": {"tpr_drop": 0.1, "score_drop": None}})["soft_rest"]["real"]["n"] == 100
    bad = [
        ({"synthetic": {"n": 3, "mean": 1.5, "variance": 0.1}, "real": base["soft_rest"]["real"]}, "mean"),
        ({"synthetic": {"n": -1, "mean": 0.5, "variance": 0.1}, "real": base["soft_rest"]["real"]}, ".n"),
        ({"synthetic": {"n": 3, "mean": 0.5, "variance": 0.3}, "real": base["soft_rest"]["real"]}, "variance"),
        ({"synthetic": base["soft_rest"]["synthetic"]}, "real"),
    ]
    for soft, field in bad:
        with pytest.raises(UserFileError, match=field):
            check({**base, "soft_rest": soft})
    with pytest.raises(UserFileError, match="tpr_drop"):
        check({**base, "shift": {"tpr_drop": "a lot"}})
