"""`audit simulate --from-scan` starts from a corrected estimate's own interval: it is not raised to the
hard lower bound, which is no bound when hard evidence has false positives (the corrected interval
already carries their measured rate); an uncorrected count still is."""

from __future__ import annotations

import json

from loops.from_scan import read_scan


def _inputs(tmp_path, estimate: dict):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"estimate": estimate, "config": {}}))
    return read_scan(path)


def test_a_corrected_interval_is_used_as_it_is(tmp_path):
    # Calibration saw hard evidence on 1% of real images: 5% of the scan has hard evidence, the corrected
    # estimate is 3% (0.5% to 6%).
    estimate = {
        "point": 0.03,
        "interval": [0.005, 0.06],
        "lower_bound": 0.05,
        "operating_points": {"real_hard_evidence_rate": 0.01},
    }
    inputs = _inputs(tmp_path, estimate)
    assert inputs.contaminations == [0.005, 0.03, 0.06]
    assert "raised" not in inputs.notes[0]
    assert inputs.roles[0.005] == "interval low"


def test_an_uncorrected_count_is_still_raised_to_the_hard_share(tmp_path):
    inputs = _inputs(tmp_path, {"point": 0.3, "interval": [0.18, 0.5], "lower_bound": 0.296, "operating_points": None})
    assert inputs.contaminations == [0.296, 0.3, 0.5] and "raised to the hard lower bound" in inputs.notes[0]
