"""The toy backends: weighted fits, per-run fallbacks, sampling bias, moments and state round trips."""

from __future__ import annotations

import numpy as np
import pytest

from loops.data import GridData
from loops.models.base import NotEnoughData
from loops.models.gaussian import GaussianModel
from loops.models.gmm import GMMModel


def rngs(runs: int, seed: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng(seed + r) for r in range(runs)]


def test_gaussian_mle_and_unbiased_fits_match_numpy():
    x = np.random.default_rng(0).standard_normal((3, 40, 2)) @ np.array([[2.0, 0.0], [0.5, 1.0]])
    for unbiased, ddof in ((False, 0), (True, 1)):
        model = GaussianModel(rngs(3), unbiased=unbiased)
        model.fit(x)
        for r in range(3):
            assert model.mean[r] == pytest.approx(x[r].mean(0))
            assert model.cov[r] == pytest.approx(np.cov(x[r], rowvar=False, ddof=ddof))


def test_gaussian_integer_weights_equal_repeated_items():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 30, 2))
    counts = rng.integers(0, 4, size=30)
    counts[:2] = [1, 2]
    for unbiased in (False, True):
        weighted, repeated = GaussianModel(rngs(1), unbiased), GaussianModel(rngs(1), unbiased)
        weighted.fit(x, weights=counts[None].astype(float))
        repeated.fit(np.repeat(x, counts, axis=1))
        assert weighted.mean == pytest.approx(repeated.mean)
        if not unbiased:  # reliability weights differ from frequency weights in the unbiased denominator
            assert weighted.cov == pytest.approx(repeated.cov)


def test_runs_without_enough_items_keep_their_previous_fit():
    model = GaussianModel(rngs(2))
    x = np.random.default_rng(2).standard_normal((2, 10, 1))
    model.fit(x)
    before = model.mean.copy()
    weights = np.ones((2, 10))
    weights[1, 1:] = 0  # run 1 keeps one item: too few to refit
    model.fit(x + 5.0, weights=weights)
    assert model.mean[0] == pytest.approx(before[0] + 5.0)
    assert model.mean[1] == pytest.approx(before[1])
    with pytest.raises(NotEnoughData, match="at least 2 items"):
        GaussianModel(rngs(2)).fit(x, weights=weights)


def test_gaussian_sampling_bias_scales_the_covariance():
    model = GaussianModel(rngs(1))
    model.load_state({"mean": np.array([[1.0, -1.0]]), "cov": np.array([[[2.0, 0.6], [0.6, 1.0]]])})
    samples = model.sample(200_000, bias=0.5)
    assert samples.shape == (1, 200_000, 2)
    assert samples[0].mean(0) == pytest.approx([1.0, -1.0], abs=0.01)
    assert np.cov(samples[0], rowvar=False) == pytest.approx(0.5 * model.cov[0], abs=0.01)
    assert model.moments(0.5)[1] == pytest.approx(0.5 * model.cov)


def test_toy_backends_are_unconditional():
    x = np.zeros((1, 5, 2))
    with pytest.raises(ValueError, match="unconditional"):
        GaussianModel(rngs(1)).fit(x, y=np.zeros((1, 5)))
    with pytest.raises(ValueError, match="non-negative"):
        GaussianModel(rngs(1)).fit(x, weights=-np.ones((1, 5)))


def test_gmm_finds_the_grid_modes_and_its_moments_match_its_samples():
    grid = GridData()
    x = np.stack([grid.draw(r, 2000) for r in rngs(2, seed=10)])
    model = GMMModel(rngs(2), components=25)
    model.fit(x)
    for r in range(2):
        nearest = np.linalg.norm(model.means[r][:, None] - grid.centres[None], axis=2).min(axis=0)
        assert (nearest < 0.2).sum() >= 23  # EM from a k-means start finds (nearly) every mode
    samples = model.sample(100_000, bias=0.5)
    mean, cov = model.moments(0.5)
    assert samples.mean(1) == pytest.approx(mean, abs=0.05)
    for r in range(2):
        assert np.cov(samples[r], rowvar=False) == pytest.approx(cov[r], rel=0.03, abs=0.1)  # cov ~ 4 I


def test_gmm_weights_act_like_repeated_items():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-3, 0.5, (200, 1)), rng.normal(3, 0.5, (200, 1))])[None]
    weights = np.where(x[0, :, 0] > 0, 3.0, 1.0)[None]
    weighted, repeated = GMMModel(rngs(1), components=2), GMMModel(rngs(1), components=2)
    weighted.fit(x, weights=weights)
    repeated.fit(np.repeat(x, weights[0].astype(int), axis=1))
    order_w, order_r = np.argsort(weighted.means[0, :, 0]), np.argsort(repeated.means[0, :, 0])
    assert weighted.weights[0, order_w] == pytest.approx([0.25, 0.75], abs=0.01)
    assert weighted.weights[0, order_w] == pytest.approx(repeated.weights[0, order_r], abs=1e-4)
    assert weighted.means[0, order_w] == pytest.approx(repeated.means[0, order_r], abs=1e-4)
    assert weighted.covs[0, order_w] == pytest.approx(repeated.covs[0, order_r], abs=1e-4)


def test_gmm_state_round_trip():
    x = np.random.default_rng(4).standard_normal((2, 100, 2))
    model = GMMModel(rngs(2), components=3)
    model.fit(x)
    restored = GMMModel(rngs(2, seed=7), components=3)
    restored.load_state({name: value.copy() for name, value in model.state().items()})
    model.rngs = rngs(2, seed=7)
    assert np.array_equal(restored.sample(10), model.sample(10))
