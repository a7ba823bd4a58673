"""The Gaussian loop against closed-form theory (MAD section 3.1) and the loop types against each other.

The model of generation g is the (g+1)-th fit, so the formulas use t = g + 1 fits; sigma0^2 = 1 (the
real data is N(0, I)). var_ratio is tr(covariance the model samples from) / d (bias included), and
drift is |mu_t - mu_0|^2 / d: the per-dimension statements hold for the trace in any dimension, and
averaging DIM dimensions lowers the noise. The median statement is one-dimensional (dim=1).
Each scenario uses its own seeds, so the checks are independent of each other.
"""

from __future__ import annotations

import numpy as np
import pytest

from loops import SimConfig, simulate

RUNS, N, G, DIM = 5000, 50, 19, 4
CHECKED = (1, 5, 10, 20)  # t


def fully_synthetic(seed: int, dim: int = DIM, **options) -> dict[int, dict[str, np.ndarray]]:
    options.setdefault("bias", 1.0)  # the theory is of plain refitting: no sampling bias unless a test sets it
    config = SimConfig(
        loop="fully-synthetic",
        repeats=RUNS,
        generations=G,
        samples_per_gen=N,
        dim=dim,
        metrics=("moments",),
        seed=seed,
        **options,
    )
    rows = simulate(config).rows
    by_t = {}
    for t in CHECKED:
        chosen = [r for r in rows if r["generation"] == t - 1]
        by_t[t] = {
            "var": np.array([r["var_ratio"] for r in chosen]),
            "drift": np.array([r["mean_shift"] for r in chosen]) ** 2 / dim,
        }
    return by_t


def test_mle_variance_shrinks_geometrically():
    q = (N - 1) / N
    measured = fully_synthetic(seed=0)
    for t in CHECKED:
        assert measured[t]["var"].mean() == pytest.approx(q**t, rel=0.05), t
    assert measured[20]["var"].mean() < 0.7  # not a flat line: 20 fits at n=50 lose a third


def test_mle_mean_drift():
    """E[(mu_t - mu_0)^2] = sum_i E[sigma^2_(i-1)] / n = 1 - q^t exactly, ~ t/n while t << n."""
    q = (N - 1) / N
    measured = fully_synthetic(seed=10_000)
    for t in CHECKED:
        assert measured[t]["drift"].mean() == pytest.approx(1 - q**t, rel=0.05), t
    for t in (1, 5):
        assert measured[t]["drift"].mean() == pytest.approx(t / N, rel=0.05), t


def test_unbiased_refit_keeps_the_mean_variance_while_the_median_falls():
    measured = fully_synthetic(seed=20_000, unbiased=True)
    one_dim = fully_synthetic(seed=25_000, dim=1, unbiased=True)
    for t in CHECKED:
        assert measured[t]["var"].mean() == pytest.approx(1.0, rel=0.05), t
        assert measured[t]["drift"].mean() == pytest.approx(t / N, rel=0.05), t
        assert np.median(one_dim[t]["var"]) == pytest.approx(np.exp(-t / (N - 1)), rel=0.05), t
    assert np.median(one_dim[20]["var"]) < 0.75


def test_sampling_bias_shrinks_variance_as_lambda_to_the_t():
    lam = 0.95
    measured = fully_synthetic(seed=30_000, unbiased=True, bias=lam)
    for t in CHECKED:
        assert measured[t]["var"].mean() == pytest.approx(lam**t, rel=0.05), t


def test_fresh_and_accumulate_stay_bounded_while_fully_synthetic_grows():
    config = SimConfig(repeats=200, generations=60, samples_per_gen=100, metrics=("moments",), seed=40_000, bias=1.0)
    rows = simulate([config], sweep=[("loop", ["fully-synthetic", "fresh", "accumulate"])], preset=False).rows

    def w2(loop: str, generations: range) -> float:
        return float(np.mean([r["w2"] for r in rows if r["loop"] == loop and r["generation"] in generations]))

    early, late = range(5, 15), range(50, 61)
    assert w2("fully-synthetic", late) > 2 * w2("fully-synthetic", early)
    for loop in ("fresh", "accumulate"):
        assert w2(loop, late) < 1.3 * w2(loop, early), loop
        assert w2(loop, late) < 0.5 * w2("fully-synthetic", late), loop
