"""Metrics: PRDC against the reference `prdc` package and Naeem et al.'s expectations, FID and W2, and the
validation of every metric on known degradations (loops/metrics/validate.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from loops.metrics import measures as metrics
from loops.metrics.measures import fid, frechet_distance, gaussian_w2, prdc
from tests.conftest import shared_data


@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.7, 0.6)])
def test_prdc_agrees_with_reference_package(shift, scale, capsys):
    reference = pytest.importorskip("prdc")
    rng = np.random.default_rng(1)
    real = rng.standard_normal((1200, 16))
    fake = shift + scale * rng.standard_normal((900, 16))
    ours = prdc(real, fake, k=5)
    theirs = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(float(theirs[name]), abs=1e-6), name
    if shift:  # a shifted, narrower fake set: high precision, low recall and coverage
        assert ours["recall"] < 0.6 and ours["coverage"] < 0.8


def test_prdc_blocks_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((500, 8)), 0.3 + rng.standard_normal((400, 8))
    whole = prdc(real, fake, k=3)
    monkeypatch.setattr(metrics, "DISTANCE_BLOCK_ENTRIES", 7 * 500)  # blocks of 7 rows
    assert prdc(real, fake, k=3) == whole


def test_batched_prdc_and_fid_agree_with_one_run_at_a_time(monkeypatch):
    """The toy worlds' batched PRDC (squared distances, runs in chunks, cached real radii) and FID
    (cached test moments) give what the per-run functions give, run by run."""
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((9, 60, 3)), 0.2 + 1.3 * rng.standard_normal((9, 50, 3))
    batched = metrics.prdc_batch(real, fake, k=4)
    for r in range(9):
        assert {name: values[r] for name, values in batched.items()} == prdc(real[r], fake[r], k=4)
    assert metrics.fid_batch(fake, real) == pytest.approx([fid(f, t) for f, t in zip(fake, real)], rel=1e-9)
    cached = metrics.fid_batch(fake, reference=metrics.reference_moments(real))
    assert (cached == metrics.fid_batch(fake, real)).all()
    radii2 = metrics.kth_squared_distances_batch(real, 4)
    assert all((metrics.prdc_batch(real, fake, 4, radii2)[n] == batched[n]).all() for n in batched)
    monkeypatch.setattr(metrics, "RUN_CHUNK_ENTRIES", 2 * 60 * 60)  # two runs per chunk
    assert all((metrics.prdc_batch(real, fake, 4)[n] == batched[n]).all() for n in batched)
    monkeypatch.setattr(metrics, "DISTANCE_BLOCK_ENTRIES", 50 * 50)  # one run at a time, row-blocked
    assert all(metrics.prdc_batch(real, fake, 4)[n] == pytest.approx(batched[n]) for n in batched)
    with pytest.raises(ValueError, match="more than 4"):
        metrics.prdc_batch(real[:, :4], fake, k=4)


def test_prdc_of_two_samples_of_one_distribution_10k():
    """Naeem et al.: E[density] = 1 and E[coverage] = 1 - prod_i (N-i)/(2N-i) ~ 1 - 2^-k for N = M."""
    n, k = 10_000, 5
    rng = np.random.default_rng(3)
    result = prdc(rng.standard_normal((n, 8)), rng.standard_normal((n, 8)), k=k)
    expected_coverage = 1 - math.prod((n - i) / (2 * n - i) for i in range(1, k + 1))
    assert expected_coverage == pytest.approx(1 - 2**-k, abs=1e-3)
    assert result["density"] == pytest.approx(1.0, abs=0.03)  # sd over seeds here: 0.007
    assert result["coverage"] == pytest.approx(expected_coverage, abs=0.006)  # sd over seeds: 0.002


def test_prdc_needs_more_items_than_k():
    with pytest.raises(ValueError, match="more than 5"):
        prdc(np.zeros((5, 2)), np.ones((10, 2)), k=5)


def test_fid_is_the_frechet_distance_of_fitted_gaussians():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((4000, 3))
    b = rng.standard_normal((4000, 3)) @ np.diag([2.0, 1.0, 0.5]) + [1.0, 0.0, 0.0]
    # the same data: 0; the closed form for these two Gaussians: 1 + (2-1)^2 + (0.5-1)^2 = 2.25
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, b) == pytest.approx(2.25, rel=0.1)
    assert fid(a, b) == pytest.approx(
        gaussian_w2(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)) ** 2, rel=1e-6
    )


def test_fid_guards_against_imaginary_sqrtm(monkeypatch):
    sigma = np.eye(2)
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m: m + 1e-9j)
    assert frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma) == pytest.approx(0.0)  # real part kept
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m: m + 0.5j * np.eye(2))
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma)


def test_gaussian_w2_batched_against_the_textbook_formula():
    rng = np.random.default_rng(5)
    factors = rng.standard_normal((6, 3, 3))
    covs = factors @ np.swapaxes(factors, 1, 2) + 0.1 * np.eye(3)
    means = rng.standard_normal((6, 3))
    batched = gaussian_w2(means[:3], covs[:3], means[3:], covs[3:])
    for i in range(3):
        root = scipy.linalg.sqrtm(covs[3 + i])
        cross = scipy.linalg.sqrtm(root @ covs[i] @ root).real
        squared = np.sum((means[i] - means[3 + i]) ** 2) + np.trace(covs[i] + covs[3 + i] - 2 * cross)
        assert batched[i] == pytest.approx(math.sqrt(squared), rel=1e-8)
    assert gaussian_w2(means[0], covs[0], means[0], covs[0]) == pytest.approx(0.0, abs=1e-6)


def test_degraded_sets_are_what_they_say():
    from loops.metrics.validate import DEGRADATIONS, degraded_sets

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 8, 8), dtype=np.uint8)
    labels = np.repeat(np.arange(6), 10)
    sets = degraded_sets(images, labels, 20, rng)
    assert list(sets) == list(DEGRADATIONS) and all(
        s.shape == (20, 8, 8) and s.dtype == np.uint8 for s in sets.values()
    )
    assert len({s.tobytes() for s in sets["repeated"]}) == 1
    kept = {images[i].tobytes() for i in np.flatnonzero(labels < 3)}
    assert all(s.tobytes() in kept for s in sets["classes-dropped"])
    assert sets["blur"].astype(float).std() < images.astype(float).std()


def test_ramp_sets_degrade_by_the_level_they_name():
    from loops.metrics.validate import RAMPS, ramp_set

    rng = np.random.default_rng(0)
    images = np.zeros((60, 8, 8), np.uint8)
    images[:, 2:6, 3:5] = 200
    labels = np.repeat(np.arange(6), 10)
    for ramp, levels in RAMPS.items():
        assert ramp_set(images, labels, ramp, levels[0], 20, rng).shape == (20, 8, 8)
    speckled = ramp_set(images, labels, "speckle share", 0.1, 200, rng)
    assert (speckled == 255).mean() == pytest.approx(0.1, abs=0.01)

    def is_noise(sets):
        return np.array([len(np.unique(image)) > 10 for image in sets])  # real ones hold two grey levels

    assert is_noise(ramp_set(images, labels, "noise share", 0.5, 200, rng)).mean() == pytest.approx(0.5, abs=0.1)
    assert is_noise(ramp_set(images, labels, "noise share", 1.0, 20, rng)).all()
    blurred = ramp_set(images, labels, "blur radius", 2.0, 20, rng)
    assert blurred.max() < 200 and blurred.astype(float).std() < images.astype(float).std()
    dropped = ramp_set(
        np.arange(60, dtype=np.uint8)[:, None, None] * np.ones((1, 8, 8), np.uint8),
        labels,
        "classes dropped",
        2,
        40,
        rng,
    )
    assert (dropped[:, 0, 0] >= 20).all()  # classes 0 and 1 (images 0..19) left out


def test_ramp_checks_flag_a_metric_that_does_not_grow_with_severity():
    from loops.metrics.validate import RAMPS, ramp_checks

    def ramp(levels, fid):
        return [
            {
                "level": level,
                "fid": fid(i),
                "precision": 1 - i / 10,
                "recall": 1 - i / 10,
                "density": 1 - i / 10,
                "coverage": 1 - i / 10,
            }
            for i, level in enumerate(levels)
        ]

    ramps = {name: ramp(levels, lambda i: 3.0 + 10 * i) for name, levels in RAMPS.items()}
    assert all(c["ok"] for c in ramp_checks(ramps))
    ramps["speckle share"] = ramp(RAMPS["speckle share"], lambda i: 3.0 + 10 * (i % 2))  # up, down, up: no order
    assert [(c["ramp"], c["metric"]) for c in ramp_checks(ramps) if not c["ok"]] == [("speckle share", "fid")]


def test_validation_checks_flag_a_metric_that_does_not_move():
    from loops.metrics.validate import check, passing_metrics

    good = {"fid": 100.0, "precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    table = {
        "real": {"fid": 1.0, "precision": 0.9, "recall": 0.9, "density": 1.0, "coverage": 0.9},
        "noise": dict(good),
        "repeated": dict(good),
        "classes-dropped": dict(good),
        "blur": dict(good),
    }
    assert passing_metrics(table) == ["fid", "precision", "recall", "density", "coverage"]
    table["noise"]["precision"] = 1.0  # noise inside the real manifold: precision means nothing here
    assert passing_metrics(table) == ["fid", "recall", "density", "coverage"]
    assert [r["metric"] for r in check(table) if not r["ok"]] == ["precision"]


@pytest.mark.slow  # trains the MNIST classifier (about a minute on 2 cores)
def test_every_metric_moves_the_right_way_in_the_study_feature_space():
    """The study's space (the MNIST classifier's pooled conv block, as loops/images/world.py builds it)
    passes every expectation and severity ramp of loops/metrics/validate.py on real MNIST held out
    from the classifier's training; the penultimate layer does not
    (uniform noise lands inside the real digits: precision and density near 1)."""
    from loops.images.world import classifier, load_dataset
    from loops.metrics.validate import check, markdown, passing_metrics, ramp_checks, severity_ramps, validate_metrics

    spec = f"mnist:{shared_data('mnist')}"
    data, conv = load_dataset(spec, 16, 1000), classifier(spec, 16, 1000)
    # real images the classifier never trained on: half of the test split against the other half
    reference, held_out, labels = data.test_images[:500], data.test_images[500:], data.test_labels[500:]
    tables = {
        name: validate_metrics(space, reference, held_out, labels, n=500)
        for name, space in (("conv", conv), ("penultimate", conv.at_layer("penultimate")))
    }
    print(markdown(tables))
    assert [r for r in check(tables["conv"]) if not r["ok"]] == []
    assert [c for c in ramp_checks(severity_ramps(conv, reference, held_out, labels)) if not c["ok"]] == []
    assert "precision" not in passing_metrics(tables["penultimate"])
    assert tables["conv"]["real"]["fid"] < tables["conv"]["blur"]["fid"] / 5
