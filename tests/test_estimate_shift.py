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
        out.append((k / scenario.mix_size,
                    corrected_estimate(mix.hard, mix.flagged, mix.score, calibration, seed=m, resamples=400)))
    return out


def covered(truth: float, e: dict) -> bool:
    return e["interval"][0] <= truth <= e["interval"][1]


@pytest.mark.parametrize("per_class", [50, 200, 1000])
def test_clean_scans_with_hard_false_positives_are_covered_at_every_calibration_size(per_class):
    # Percentiles taken after clipping each replicate's rest share at 0 covered pi = 0 in 0.88-0.90 of
    # such scans at 200 and 1000 images per class.
    scenario = Scenario("hard FP 1%", 1.0, 0.3, per_class, N_SCAN, real_hard_rate=0.01)
    results = simulated(scenario, 0.0, 300, seed=per_class)
    assert np.mean([covered(t, e) for t, e in results]) >= 0.92
