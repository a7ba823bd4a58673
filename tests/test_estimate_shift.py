"""The estimate under generator / source shift: bootstrap percentiles of unclipped replicates, the
shift test's false-alarm rate and power, the interval widened to the sensitivity band when it warns,
the band from calibration's measured spread, and the band-upper gate. Simulations are small versions
of benchmarks/estimate_accuracy.py's cells."""

from __future__ import annotations

import numpy as np
import pytest

from audit.estimate import corrected_estimate
from benchmarks.estimate_accuracy import PROBE_TRAIN_PRIOR, Scenario, calibration_of, simulated_items

N_SCAN = 5000


def simulated(scenario: Scenario, pi: float, mixes: int, seed: int) -> list[tuple[float, dict]]:
    """(truth, estimate) per mix, each with a fresh calibration, as the benchmark draws them."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(mixes):
        n = scenario.calibration_per_class
        calibration = calibration_of(simulated_items(n, n, scenario, rng), PROBE_TRAIN_PRIOR)
        k = int(round(pi * scenario.mix_size))
        mix = simulated_items(k, scenario.mix_size - k, scenario, rng, in_scan=True)
        out.append(
            (
                k / scenario.mix_size,
                corrected_estimate(mix.hard, mix.flagged, mix.score, calibration, seed=m, resamples=400),
            )
        )
    return out


def covered(truth: float, e: dict) -> bool:
    return e["interval"][0] <= truth <= e["interval"][1]


@pytest.mark.parametrize("per_class", [50, 200, 1000])
def test_clean_scans_with_hard_false_positives_are_covered_at_every_calibration_size(per_class):
    # Percentiles taken after clipping each replicate's rest share at 0 covered pi = 0 in 0.88-0.90 of
    # such scans at 200 and 1000 images per class.
    scenario = Scenario("hard FP 1%", 1.0, 0.3, per_class, N_SCAN, real_hard_rate=0.01)
    results = simulated(scenario, 0.0, 200, seed=per_class)
    assert np.mean([covered(t, e) for t, e in results]) >= 0.92
    # nor does the shift test mistake them for shift (with two real calibration images carrying hard evidence as
    # the model of the scan's 50, it warned on 55% of them)
    assert np.mean([e["shift"]["rejected"] for _, e in results]) <= 0.03


def test_a_negative_rest_share_does_not_pull_the_upper_end_below_the_hard_count():
    from tests.test_estimate import calibration, flags

    # 39 of 200 with hard evidence (none on real calibration images), 1 of the other 161 flagged, while 2 of 9
    # real calibration images were: rho's estimate is far below 0. Fully unclipped replicates put the upper
    # end at 0.16, under the hard count; rho floored at 0 for the upper end keeps it above.
    e = corrected_estimate(*flags(39, 1, 160), calibration(tp=3, fn=0, fp=2, tn=7, hard_tp=15))
    assert e["estimators"]["rg"]["interval"][1] > 39 / 200 and e["point"] == pytest.approx(39 / 200)
    assert e["interval"][0] == 0.0


def test_strong_shift_warns_and_widens_to_the_band():
    # The scan's synthetic images score lower than calibration's (mu 0.35, calibrated 1.0): the interval alone
    # covered pi = 0.4 in none of 100 such scans.
    scenario = Scenario("strong shift", 1.0, 0.3, 1000, N_SCAN, scan_mu=0.35)
    results = simulated(scenario, 0.4, 20, seed=1)
    for _truth, e in results:
        assert e["shift"]["tested"] and e["shift"]["warned"] and e["shift"]["widened"]
        assert e["shift"]["p_value"] < e["shift"]["level"]
        low, high = e["sensitivity"]["interval"]
        assert e["interval"][0] <= low and e["interval"][1] >= high
        assert any(w.startswith("Possible generator or source shift") and "widened" in w for w in e["warnings"])


def test_unshifted_scans_rarely_warn():
    scenario = Scenario("unshifted", 1.0, 0.3, 200, N_SCAN)
    results = simulated(scenario, 0.2, 100, seed=2)
    assert all(e["shift"]["tested"] for _, e in results)
    assert np.mean([e["shift"]["rejected"] for _, e in results]) <= 0.05  # level 0.01; 5 of 100 would be p ~ 0.003
    assert np.mean([covered(t, e) for t, e in results]) >= 0.9


def test_a_scan_too_small_to_check_for_shift_reports_the_band():
    """The test's power is measured, not assumed: 40 images cannot show a shift of the assumed size, so
    the interval is widened to the band (a small scan from unseen sources missed the truth unwarned)."""
    scenario = Scenario("unshifted", 1.0, 0.3, 1000, 40)
    ((truth, e),) = simulated(scenario, 0.2, 1, seed=4)
    shift = e["shift"]
    assert shift["tested"] and not shift["rejected"] and not shift["powered"] and shift["warned"]
    assert max(shift["power"].values()) < 0.8 and e["interval"] == shift["widened_to"]
    assert e["interval"][0] == shift["band"][0]  # a rise of the real images' scores would pull the estimate down
    assert any(w.startswith("Generator or source shift not ruled out") for w in e["warnings"])


def test_a_large_scan_is_widened_only_by_the_shifts_its_test_could_miss():
    """At 5000 images a real-score rise of the assumed size is caught (power >= 0.8), so the band's lower
    end, which that rise makes, is not added; a small drop of synthetic scores is not, so its end is."""
    scenario = Scenario("unshifted", 1.0, 0.3, 1000, N_SCAN)
    ((truth, e),) = simulated(scenario, 0.2, 1, seed=5)
    shift = e["shift"]
    assert shift["power"]["real higher"] >= 0.8 > shift["power"]["synthetic lower"]
    assert e["interval"][0] > shift["band"][0] and e["interval"][1] == shift["band"][1]
    assert e["interval"][0] <= truth <= e["interval"][1]


def test_a_move_that_would_hardly_change_the_estimate_does_not_widen_it():
    """At pi = 0 a drop of the synthetic images' scores, which no test can see there, would move the
    estimate by nothing: the upper end stays where the interval put it."""
    scenario = Scenario("unshifted", 1.0, 0.3, 1000, N_SCAN)
    ((truth, e),) = simulated(scenario, 0.0, 1, seed=6)
    shift = e["shift"]
    assert shift["power"]["synthetic lower"] < 0.8 and e["interval"][1] < shift["band"][1]
    assert e["interval"] == e["estimators"][e["estimator"]]["interval"]


def test_moved_scores_move_the_mean_by_what_is_asked():
    from audit.shift import moved_scores

    values = np.random.default_rng(0).beta(2, 5, 500)
    for move in (-0.1, 0.05, 0.2):
        assert moved_scores(values, move).mean() == pytest.approx(values.mean() + move, abs=1e-6)
    assert np.all(np.diff(moved_scores(np.sort(values), 0.1)) >= 0)  # the order of scores is kept


def test_shift_test_says_why_it_cannot_run():
    from tests.test_estimate import calibration, flags

    no_scores = corrected_estimate(*flags(10, 30, 60), calibration(tp=800, fn=200, fp=100, tn=900))["shift"]
    assert not no_scores["tested"] and not no_scores["warned"] and "probe did not run" in no_scores["reason"]
    rng = np.random.default_rng(0)
    hard, flagged, _ = flags(10, 30, 60)
    old = calibration(tp=800, fn=200, fp=100, tn=900, soft=(0.8, 0.2))  # predates score distributions
    e = corrected_estimate(hard, flagged, rng.random(100), old)
    assert not e["shift"]["tested"] and "re-run" in e["shift"]["reason"] and e["shift"]["p_value"] is None


def test_band_uses_the_measured_spread_of_both_rates():
    from tests.test_estimate import calibration, flags

    # RG: TPR 0.8, FPR 0.1, q = 30/90, 10 % hard. Folds moved TPR by -0.2..+0.05 and FPR by -0.05..+0.1:
    # upper end at TPR 0.6, FPR 0.05; lower end at TPR 0.85, FPR 0.2.
    measured = {
        **calibration(tp=800, fn=200, fp=100, tn=900),
        "shift": {
            "tpr_drop": 0.2,
            "score_drop": None,
            "spread": {"tpr": {"min": -0.2, "max": 0.05, "folds": 3}, "fpr": {"min": -0.05, "max": 0.1, "folds": 2}},
        },
    }
    band = corrected_estimate(*flags(10, 30, 60), measured)["sensitivity"]
    assert band["point"][1] == pytest.approx(0.1 + 0.9 * (1 / 3 - 0.05) / 0.55)
    assert band["point"][0] == pytest.approx(0.1 + 0.9 * (1 / 3 - 0.2) / 0.65)
    assert "spread over 3 leave-one-out folds" in band["source"] and "spread over 2" in band["source"]
    assert band["ranges"] == {"synthetic": [-0.2, 0.05], "real": [-0.05, 0.1]}


def test_leave_one_source_out_measures_the_false_positive_rate_of_an_unseen_real_source():
    # Real "photos" sit at the origin, real "renders" halfway towards the synthetic images along axis 0. Trained
    # with the renders, the probe learns they are real; left out, they are flagged: FPR rises on them.
    from audit.calibrate import generator_shift
    from audit.detectors.probe import train_probe

    rng = np.random.default_rng(0)
    n = 80
    photos, renders, a, b = (rng.normal(0, 1, (n, 8)) for _ in range(4))
    renders[:, 0] += 2.5
    a[:, 0] += 4
    b[:, 0] += 4
    b[:, 1] += 1
    x = np.c_[np.r_[photos, renders, a, b], np.full(4 * n, 6.0)]
    y = np.r_[np.zeros(2 * n, int), np.ones(2 * n, int)]
    is_heldout = rng.random(len(y)) < 0.4
    probe = train_probe(x[~is_heldout], y[~is_heldout], "random")
    scores = probe.probabilities(x)

    def retrain(mask):
        other = train_probe(x[mask], y[mask], "random")
        return other.probabilities(x), other.probabilities(x) >= other.threshold

    table = {
        "label": y,
        "hard": np.zeros(len(y), bool),
        "group": [None] * (2 * n) + ["a"] * n + ["b"] * n,
        "source": ["photos"] * n + ["renders"] * n + ["a"] * n + ["b"] * n,
    }
    decisions = {"probe": scores >= probe.threshold, "combined": scores >= probe.threshold}
    shift = generator_shift(table, is_heldout, decisions, {"scores": scores, "retrain": retrain})
    renders_entry = shift["sources"]["renders"]
    assert renders_entry["class"] == "real" and renders_entry["fpr_unseen"] > renders_entry["fpr"] + 0.2
    assert shift["spread"]["fpr"]["folds"] == 2 and shift["spread"]["fpr"]["max"] > 0.15
    assert shift["spread"]["mean_score_real"]["max"] > 0.1
    assert set(shift["sources"]) == {"photos", "renders"}  # the synthetic sources are the generator folds
    assert shift["spread"]["tpr"]["folds"] == 2 and "skipped" not in shift


def test_calibration_file_shift_fields_are_checked(tmp_path):
    import json

    from audit.engine.user_files import UserFileError, check_calibration
    from tests.test_estimate import calibration

    base = {
        **calibration(tp=80, fn=20, fp=10, tn=90, soft=(0.8, 0.2)),
        "shift": {"tpr_drop": 0.1, "spread": {"tpr": {"min": -0.1, "max": 0.02, "folds": 2}, "fpr": None}},
        "score_distributions": {
            s: {c: {"n": 3, "values": [0.1, 0.5, 0.9]} for c in ("synthetic", "real")} for s in ("rest", "hard")
        },
    }
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(base))
    assert check_calibration(path)["score_distributions"]["rest"]["real"]["n"] == 3
    bad = [
        ({"shift": {"spread": {"tpr": {"min": -2, "max": 0}}}}, "spread.tpr.min"),
        ({"score_distributions": {"rest": {}}}, "rest.synthetic"),
        (
            {
                "score_distributions": {
                    s: {c: {"n": 1, "values": [0.1, 0.2]} for c in ("synthetic", "real")} for s in ("rest", "hard")
                }
            },
            r"\.n must",
        ),
        (
            {
                "score_distributions": {
                    s: {c: {"n": 1, "values": [1.5]} for c in ("synthetic", "real")} for s in ("rest", "hard")
                }
            },
            "values",
        ),
    ]
    for change, field in bad:
        path.write_text(json.dumps({**base, **change}))
        with pytest.raises(UserFileError, match=field):
            check_calibration(path)


def shifted_summary() -> dict:
    """A scan summary whose estimate comes from a strongly shifted scan (it warns and widens)."""
    truth, e = simulated(Scenario("strong shift", 1.0, 0.3, 1000, N_SCAN, scan_mu=0.35), 0.4, 1, seed=3)[0]
    assert e["shift"]["warned"]
    for name, point in e["operating_points"].items():  # the counts the benchmark keeps, with the rates reports show
        if name in ("rest", "hard_evidence"):
            n_syn, n_real = point["tp"] + point.get("fn", 0), point["fp"] + point.get("tn", 0)
            point.update(
                tpr=point["tp"] / max(n_syn, 1), fpr=point["fp"] / max(n_real, 1), n_synthetic=n_syn, n_real=n_real
            )
    return {
        "source": "scraped/",
        "counts": {"total": N_SCAN, "ok": N_SCAN, "error": 0, "flagged": 2000, "hard_evidence": 600},
        "estimate": e,
        "detectors": ["metadata", "watermark", "probe"],
        "skipped_detectors": {},
        "notes": [],
        "per_detector": {},
        "per_generator": {},
        "per_tool": {},
        "groups": None,
        "errors": {"count": 0, "by_reason": {}, "first": []},
        "config": {},
    }


def test_every_report_says_the_shift_test_warned_and_widened():
    from rich.console import Console

    from audit.report.console import summary_table
    from audit.report.github import github_annotations, github_summary
    from audit.report.html import html_report
    from audit.report.markdown import markdown_summary
    from audit.report.tally import Listed

    summary = shifted_summary()
    checks = [{"name": "synthetic fraction <= 0.05", "passed": False, "exit": 1, "message": "x"}]
    console = Console(width=300, record=True)
    console.print(summary_table(summary))
    texts = {
        "console": console.export_text(),
        "markdown": "\n".join(markdown_summary(summary)),
        "html": html_report(summary, Listed()),
        "github": github_summary(summary, checks, 0.05),
        "annotations": "\n".join(github_annotations(summary, checks)),
    }
    for name, text in texts.items():
        assert "Possible generator or source shift" in " ".join(text.split()), name
    for name in ("console", "markdown", "html", "github"):
        assert "Shift test:" in texts[name] and "widened" in texts[name], name


@pytest.mark.parametrize("gate, fails", [("upper", False), ("band-upper", True)])
def test_band_upper_gate_fails_where_the_band_reaches_the_threshold(gate, fails):
    from audit.report.gate import gate_checks
    from tests.test_estimate import calibration, flags

    # TPR 0.4, FPR 0.1 (100,000 calibration images a class): the interval stays under 0.05, the band (TPR 0.1
    # lower, assumed) reaches above it.
    e = corrected_estimate(*flags(400, 10886, 88714), calibration(tp=40000, fn=60000, fp=10000, tn=90000))
    summary = {
        **shifted_summary(),
        "estimate": e,
        "counts": {"total": 100_000, "ok": 100_000, "error": 0, "flagged": 11286, "hard_evidence": 400},
    }
    assert e["interval"][1] <= 0.05 < e["sensitivity"]["upper"]
    check = gate_checks(summary, 0.05, gate)[1]
    assert check["passed"] is not fails and ("sensitivity band" in check["name"]) is (gate == "band-upper")


def test_scan_accepts_the_band_upper_gate_and_says_when_there_is_no_band(tmp_path):
    import json

    from click.testing import CliRunner

    from audit.cli import main
    from tests.conftest import image_bytes, noise_image

    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        (src / f"{i}.png").write_bytes(image_bytes(noise_image(seed=i)))
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "0",
            "--quiet",
            "--fail-above",
            "0.99",
            "--gate",
            "band-upper",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert (
        not summary["estimate"]["shift"]["tested"] and "nothing is corrected" in summary["estimate"]["shift"]["reason"]
    )
    assert "no sensitivity band" in json.dumps(output)
