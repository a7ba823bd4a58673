"""The study's verdict rules on synthetic tables whose answer is known: paired ratios and differences
with bootstrap intervals over seeds, bounded vs growing on the last half's slope, and "cannot tell"
whenever the interval allows both readings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from loops.metrics.paired import Interval, bootstrap_mean, growth_reading, last_half_slope, paired_log_ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mnist_verdicts as mv  # noqa: E402

sys.path.pop(0)


def rows_from(curves: dict[str, list[list[float]]], metric: str = "fid") -> list[dict]:
    """config -> one FID curve (generation 0..G) per seed; recall and precision follow 1/FID and
    coverage the same, unless given."""
    rows = []
    for config, seeds in curves.items():
        for seed, curve in enumerate(seeds):
            for g, value in enumerate(curve):
                rows.append(
                    {
                        "config": config,
                        "seed": seed,
                        "generation": g,
                        "fid": value,
                        "recall": 10 / value,
                        "precision": 10 / value,
                        "coverage": 10 / value,
                    }
                )
    return rows


def last(fids: list[float], generations: int = 9) -> list[list[float]]:
    """Flat curves ending at each seed's FID (for last-generation findings)."""
    return [[f] * (generations + 1) for f in fids]


def find(verdicts: list[dict], source_start: str, finding_part: str = "") -> dict:
    return next(v for v in verdicts if v["source"].startswith(source_start) and finding_part in v["finding"])


def test_bootstrap_interval_holds_the_mean_and_narrows_with_agreeing_seeds():
    spread = bootstrap_mean([1.0, 2.0, 3.0])
    assert spread.low <= 2.0 <= spread.high and spread.seeds == 3
    tight = bootstrap_mean([2.0, 2.01, 1.99, 2.0, 2.0])
    assert tight.high - tight.low < spread.high - spread.low
    assert bootstrap_mean([np.nan, 1.0]).seeds == 1


def test_three_way_reading_says_cannot_tell_when_the_interval_holds_the_threshold():
    assert Interval(2.0, 1.5, 2.5, 3).reading(1.0, "above") == "reproduced"
    assert Interval(0.5, 0.2, 0.8, 3).reading(1.0, "above") == "not reproduced"
    assert Interval(1.0, 0.5, 1.5, 3).reading(1.0, "above") == "cannot tell"
    assert Interval(0.5, 0.2, 0.8, 3).reading(1.0, "below") == "reproduced"
    assert Interval(2.0, 1.5, 2.5, 2).reading(1.0, "above").startswith("cannot tell (fewer than 3")


def test_paired_ratio_pairs_seeds_and_ignores_unpaired_ones():
    ratio = paired_log_ratio({0: 20.0, 1: 40.0, 2: 80.0, 3: 5.0}, {0: 10.0, 1: 20.0, 2: 40.0})
    assert ratio.seeds == 3 and np.exp(ratio.mean) == pytest.approx(2.0)
    assert np.exp(ratio.low) == pytest.approx(2.0) and np.exp(ratio.high) == pytest.approx(2.0)


def test_last_half_slope_reads_growth_per_generation_on_a_log_scale():
    growing = [10 * 1.1**g for g in range(10)]
    assert last_half_slope(growing) == pytest.approx(np.log(1.1))
    assert last_half_slope([50, 60, 70, 80, 90, 95, 95, 95, 95, 95]) == pytest.approx(0.0, abs=0.01)
    assert growth_reading(bootstrap_mean([0.09, 0.1, 0.11])) == "growing"
    assert growth_reading(bootstrap_mean([0.0, 0.005, -0.01])) == "bounded"
    assert growth_reading(bootstrap_mean([-0.05, 0.0, 0.08])) == "cannot tell"


PLATEAUS = [[10 + 40 * min(g, 4) / 4 + noise for g in range(10)] for noise in (0.0, 0.3, -0.3)]


def test_accumulate_bounded_where_replace_grows_is_reproduced():
    grows = [[10 * 1.12**g for g in range(10)] for _ in range(3)]
    verdicts = mv.verdicts(rows_from({"fresh-c0": last([10] * 3), "fresh-c1": grows, "accumulate": PLATEAUS}))
    assert find(verdicts, "Gerstgrasser", "bounded")["verdict"] == "reproduced"


def test_accumulate_growing_is_not_reproduced():
    grows = [[10 * 1.1**g for g in range(10)] for _ in range(3)]
    verdicts = mv.verdicts(rows_from({"fresh-c0": last([10] * 3), "fresh-c1": grows, "accumulate": grows}))
    assert find(verdicts, "Gerstgrasser", "bounded")["verdict"] == "not reproduced"


def test_a_replace_loop_at_the_metric_saturation_cannot_show_growth():
    saturated = [[140.0 + g * 0.1 for g in range(10)] for _ in range(3)]
    rows = rows_from({"fresh-c0": last([10] * 3), "fresh-c1": saturated, "accumulate": PLATEAUS})
    finding = find(mv.verdicts(rows, saturation=144.0), "Gerstgrasser", "bounded")
    assert (
        finding["verdict"] == "cannot tell" and "replace" in finding["evidence"] and "saturated" in finding["evidence"]
    )
    assert find(mv.verdicts(rows), "Gerstgrasser", "bounded")["verdict"] == "cannot tell"  # flat: not growing either


def test_accumulate_mitigation_is_a_paired_ratio_with_cannot_tell_between():
    def verdict(accumulate, replace):
        rows = rows_from({"fresh-c0": last([10] * 3), "fresh-c1": last(replace), "accumulate": last(accumulate)})
        return find(mv.verdicts(rows), "Gerstgrasser", "mitigates")["verdict"]

    assert verdict([60, 65, 70], [100, 100, 100]) == "reproduced"
    assert verdict([120, 130, 125], [100, 100, 100]) == "not reproduced"
    assert verdict([80, 120, 100], [100, 100, 100]) == "cannot tell"
    assert verdict([60], [100]) == "cannot tell (fewer than 3 seeds)"
    assert verdict([], [100, 100, 100]) == "cannot tell (not run)"


def test_sweep_findings_read_dose_response_and_the_stability_threshold():
    def verdicts(sweep: dict[float, list[float]]):
        curves = {"fresh-c0": last([10, 10, 10])} | {f"fresh-c{c:g}": last(f) for c, f in sweep.items()}
        return mv.verdicts(rows_from(curves))

    rising = verdicts({0.2: [12, 13, 14], 0.4: [40] * 3, 1.0: [150] * 3})
    assert find(rising, "MAD, Martínez")["verdict"] == "reproduced"
    assert find(rising, "Bertrand")["verdict"] == "reproduced"  # c = 0.2 within 1.5x the control
    unordered = verdicts({0.2: [90] * 3, 0.4: [20] * 3, 1.0: [150] * 3})
    assert find(unordered, "MAD, Martínez")["verdict"] == "not reproduced"
    assert find(unordered, "Bertrand")["verdict"] == "not reproduced"
    borderline = verdicts({0.2: [12, 16, 18], 1.0: [150] * 3})  # ratio interval holds 1.5
    assert find(borderline, "Bertrand")["verdict"] == "cannot tell"


def test_generation_zero_is_judged_against_the_floor():
    curves = {"fresh-c0": [[5.5] * 10, [6.0] * 10, [6.5] * 10]}
    assert find(mv.verdicts(rows_from(curves), floor=3.4), "study precondition")["verdict"] == "met"
    curves = {"fresh-c0": [[12.0] * 10, [12.5] * 10, [13.0] * 10]}
    assert find(mv.verdicts(rows_from(curves), floor=3.4), "study precondition")["verdict"] == "not met"
    only_replace = rows_from({"fresh-c1": [[5.5] * 4, [6.0] * 4, [7.0] * 4]})  # a plan without the control
    assert find(mv.verdicts(only_replace, floor=3.4), "study precondition")["evidence"].endswith("worst seed 2.06")
    only_filters = rows_from({mv.UNFILTERED: [[5.5] * 2, [6.0] * 2, [7.5] * 2]})  # the filters plan
    assert find(mv.verdicts(only_filters, floor=3.4), "study precondition")["evidence"].endswith("worst seed 2.21")
    assert "no floor" in find(mv.verdicts(rows_from(curves)), "study precondition")["verdict"]


def guidance_rows(recall_w0: list[float], recall_w2: list[float], precision_gain: float = 0.1) -> list[dict]:
    """c = 1 at w = 0 and w = 2 over generations, 3 seeds with a small per-seed jitter; w = 2's precision
    sits `precision_gain` above w = 0's."""
    rows = []
    for config, recalls, gain in (("fresh-c1", recall_w0, 0.0), ("fresh-c1-w2", recall_w2, precision_gain)):
        for seed in range(3):
            for g, recall in enumerate(recalls):
                jitter = 0.005 * seed if recall > 0 else 0.0
                row = {"config": config, "seed": seed, "generation": g, "fid": 50.0}
                rows.append(row | {"recall": recall + jitter, "precision": 0.6 + gain + jitter})
    return rows


def test_guidance_needs_recall_down_and_precision_up():
    rows = guidance_rows([0.7] * 4, [0.5] * 4)
    assert find(mv.verdicts(rows), "MAD (sampling")["verdict"] == "reproduced"
    w1 = [r | {"config": "fresh-c1-w1", "recall": r["recall"] + 0.1} for r in rows if r["config"] == "fresh-c1-w2"]
    assert "w = 1 at g3: recall -0.10" in find(mv.verdicts(rows + w1), "MAD (sampling")["evidence"]
    rows = guidance_rows([0.7] * 4, [0.5] * 4, precision_gain=-0.2)  # precision falls too
    assert find(mv.verdicts(rows), "MAD (sampling")["verdict"] == "cannot tell"


def test_guidance_is_read_at_the_last_generation_before_recall_saturates():
    # both loops reach recall 0 at generation 3, where no difference can show; generation 2 is the
    # last where w = 2's recall (0.06) can still fall
    rows = guidance_rows([0.8, 0.4, 0.2, 0.0], [0.6, 0.2, 0.06, 0.0])
    finding = find(mv.verdicts(rows), "MAD (sampling")
    assert finding["verdict"] == "reproduced" and finding["evidence"].startswith("g2:")
    rows = guidance_rows([0.04, 0.0, 0.0, 0.0], [0.02, 0.0, 0.0, 0.0])
    assert find(mv.verdicts(rows), "MAD (sampling")["verdict"] == "cannot tell (saturated)"
    assert find(mv.verdicts(rows_from({"fresh-c0": last([10] * 3)})), "MAD (sampling")["verdict"] == (
        "cannot tell (not run)"
    )


def test_training_scaled_to_the_pool_gives_every_pool_the_same_epochs():
    from dataclasses import replace

    from loops.config import ConfigError, SimConfig, resolve
    from loops.models import make_model
    from loops.models.diffusion import PRESETS

    fixed = PRESETS["cpu"]
    assert fixed.steps_for(1000) == fixed.steps_for(10_000) == fixed.train_steps
    scaled = replace(fixed, train_epochs=150)
    assert scaled.steps_for(1000) == 1172 and scaled.steps_for(10_000) == 11_719  # ceil(150 x N / 128)
    config, _ = resolve(SimConfig(model="diffusion", dataset="mnist:unused", device="cpu", train_epochs=150))
    assert config.train_steps is None
    model = make_model(config, [np.random.default_rng(0)], data=type("Data", (), {"classes": 10})())
    assert model.preset.train_epochs == 150
    with pytest.raises(ConfigError, match="not both"):
        resolve(SimConfig(model="diffusion", dataset="mnist:unused", device="cpu", train_epochs=150, train_steps=10))


def test_a_contamination_run_with_fewer_seeds_is_listed_not_judged():
    rows = rows_from(
        {
            "fresh-c0": last([10, 10, 10]),
            "fresh-c0.2": last([40, 42, 44]),
            "fresh-c0.6": last([12]),  # one seed so far: it neither proves nor blocks the threshold
        }
    )
    finding = find(mv.verdicts(rows), "Bertrand")
    assert finding["verdict"] == "not reproduced"
    assert "not judged yet: c = 0.6 (1 seed)" in finding["evidence"]


def test_a_filter_is_judged_against_no_filter_on_the_same_internet():
    plain, transformed = "fresh-c0.4-filter-watermark", "fresh-c0.4-filter-watermark-jpeg75-resize0.5"
    curves = {
        mv.UNFILTERED: last([20.0, 21.0, 22.0], 1),
        mv.UNFILTERED_TRANSFORMED: last([40.0, 42.0, 44.0], 1),
        plain: last([16.0, 17.0, 17.5], 1),  # about 0.8x its reference in every seed: helps
        transformed: last([24.0, 25.0, 27.0], 1),  # 0.6x the transformed reference, 1.2x the plain one
    }
    rows = rows_from(curves)
    for r in rows:
        r |= {"tpr_filter": 0.5, "fpr_filter": 0.01, "kept_synthetic_share": 0.25}
    results = mv.verdicts(rows)
    assert find(results, "the tool's premise", f"{plain} has")["verdict"] == "reproduced"
    judged = find(results, "the tool's premise", f"{transformed} has")
    assert judged["verdict"] == "reproduced" and mv.UNFILTERED_TRANSFORMED in judged["rule"]
    assert "TPR 0.50, FPR 0.01" in judged["evidence"]
    curves[plain] = last([24.0, 25.0, 27.5], 1)  # now above the unfiltered run in every seed
    assert find(mv.verdicts(rows_from(curves)), "the tool's premise", f"{plain} has")["verdict"] == "not reproduced"
    unrun = find(mv.verdicts(rows_from(curves)), "the tool's premise", "bank0.25")
    assert unrun["verdict"] == "cannot tell (not run)"
