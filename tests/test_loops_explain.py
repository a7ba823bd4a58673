"""Every simulation explains itself: the verdict's arithmetic, the control and baselines it adds,
and `--from-scan` never simulating below the scan's hard lower bound."""

from __future__ import annotations

import json

import pytest

from loops import SimConfig, simulate
from loops.baselines import with_baselines
from loops.config import resolve
from loops.from_scan import read_scan
from loops.outputs.verdict import verdict


def _summary(fids: dict[str, float], recall: dict[str, float]) -> dict:
    configs = [
        {"label": "all-real control", "loop": "fresh", "contamination": 0.0, "filter": "none"},
        {"label": "fresh c=0.5", "loop": "fresh", "contamination": 0.5, "filter": "none"},
        {
            "label": "fresh c=0.5 filter=oracle",
            "loop": "fresh",
            "contamination": 0.5,
            "filter": "oracle",
            "filter_tpr": 1.0,
            "filter_fpr": 0.0,
        },
    ]
    for c in configs:
        c.setdefault("filter_tpr", 0.0), c.setdefault("filter_fpr", 0.0), c.setdefault("reweight", None)
    curves = {
        label: {
            "generation": [0, 1, 2, 3, 4],
            "fid": {"mean": [1.0, 9, 9, 9, fids[label]]},
            "recall": {"mean": [1.0, 9, 9, 9, recall[label]]},
        }
        for label in fids
    }
    return {"configs": configs, "curves": curves}


def test_verdict_states_loss_and_recovery():
    text = verdict(
        _summary(
            {"all-real control": 1.0, "fresh c=0.5": 2.0, "fresh c=0.5 filter=oracle": 1.25},
            {"all-real control": 0.8, "fresh c=0.5": 0.6, "fresh c=0.5 filter=oracle": 0.8},
        )
    )
    assert text.startswith("After 4 generations at contamination 0.5 (fresh), quality fell 100% (FID): FID 2 against 1")
    assert "diversity fell 25% (recall)" in text
    assert "Filter oracle (TPR 1, FPR 0) recovers 75% of that loss (FID 1.25)" in text


def test_verdict_without_loss_claims_no_recovery():
    text = verdict(
        _summary(
            {"all-real control": 1.0, "fresh c=0.5": 1.01, "fresh c=0.5 filter=oracle": 0.9},
            {"all-real control": 0.8, "fresh c=0.5": 0.8, "fresh c=0.5 filter=oracle": 0.8},
        )
    )
    assert "quality held" in text and "recovers" not in text and "cannot improve" in text


def test_baselines_come_first_and_once():
    watermark = resolve(SimConfig(contamination=0.3, filter="watermark"))[0]
    probe = resolve(SimConfig(contamination=0.3, filter="probe"))[0]
    out = with_baselines([watermark, probe])
    assert [(c.contamination, c.filter) for c in out] == [
        (0.0, "none"),
        (0.3, "none"),
        (0.3, "watermark"),
        (0.3, "probe"),
    ]


def test_default_simulation_shows_the_phenomenon():
    """The default scenario (lambda 0.7): contamination costs quality and a filter wins some back."""
    result = simulate(
        SimConfig(bias=0.7, contamination=0.5, filter="oracle", generations=12, repeats=10, metrics=("fid",)),
        baseline=True,
    )
    late = {c: sum(v["fid"]["mean"][-3:]) for c, v in result.summary["curves"].items()}
    assert late["all-real control"] < late["fresh c=0.5 filter=oracle"] < late["fresh c=0.5"]
    assert "quality fell" in result.summary["verdict"] and "Filter oracle" in result.summary["verdict"]


@pytest.mark.parametrize(
    "estimate, expected",
    [
        ({"point": 0.3, "interval": [0.18, 0.5], "lower_bound": 0.296}, [0.296, 0.3, 0.5]),
        ({"point": None, "interval": [0.1, 0.5], "lower_bound": 0.2}, [0.2, 0.5]),
        ({"point": 0.2, "interval": [0.1, 0.3], "lower_bound": 0.05}, [0.1, 0.2, 0.3]),
    ],
)
def test_from_scan_never_below_the_hard_lower_bound(tmp_path, estimate, expected):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"estimate": estimate, "config": {}}))
    inputs = read_scan(path)
    assert inputs.contaminations == expected
    if estimate["interval"][0] < estimate["lower_bound"] and estimate["point"] is not None:
        assert "raised to the hard lower bound" in inputs.notes[0]


def test_the_report_leads_with_quality_and_diversity_and_drops_constant_panels():
    from loops.outputs.curves import colours, headline_metrics, varying_metrics

    curves = {
        "all-real control": {
            "generation": [0, 1, 2],
            "fid": {"mean": [0.1, 0.2, 0.1], "sd": [0, 0, 0]},
            "recall": {"mean": [0.9, 0.8, 0.9], "sd": [0, 0, 0]},
            "seconds_fit": {"mean": [0.0, 0.0, 0.0], "sd": [0, 0, 0]},
            "tpr_filter": {"mean": [0.0, 0.0, 0.0], "sd": [0, 0, 0]},
        },
        "fresh c=0.5 filter=watermark": {
            "generation": [0, 1, 2],
            "fid": {"mean": [0.1, 0.3, 0.4], "sd": [0, 0, 0]},
            "tpr_filter": {"mean": [0.0, 0.0, 0.0], "sd": [0, 0, 0]},
        },
    }
    assert headline_metrics(curves) == ["fid", "recall"]
    assert "seconds_fit" not in varying_metrics(curves) and "tpr_filter" not in varying_metrics(curves)
    assert len(set(colours(list(curves)).values())) == 2
