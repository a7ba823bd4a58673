"""The world's pools per loop type (with ground truth), filters through their operating points,
rates files, and configuration resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loops.config import ConfigError, SimConfig, labels, parse_sweep, plan, resolve
from loops.data import GaussianData, GridData, load_data
from loops.mitigate.filters import DEFAULT_RATES, OperatingPointFilter, load_rates, operating_point
from loops.streams import Streams
from loops.world import World

N = 10


def run_world(loop: str, contamination, generations: int = 3, runs: int = 2):
    """Pools of each generation, publishing recognisable samples (value = generation + 100)."""
    world = World(GaussianData(1), loop, contamination, N, 5, Streams(0, runs))
    pools = []
    for g in range(generations + 1):
        pools.append(world.training_pool(g))
        world.publish(np.full((runs, N, 1), 100.0 + g), g)
    return pools


def composition(pool) -> list[tuple[str, int, int]]:
    return [("synthetic" if b.synthetic else "real", b.origin, m) for b, m in pool.parts]


def test_generation_zero_trains_on_real_data_for_every_loop():
    for loop in ("fully-synthetic", "augment", "fresh", "accumulate"):
        assert composition(run_world(loop, 0.3)[0]) == [("real", 0, N)]


def test_pools_per_loop_type():
    assert composition(run_world("fully-synthetic", 1.0)[2]) == [("synthetic", 1, N)]
    assert composition(run_world("augment", 0.3)[2]) == [("real", 0, 7), ("synthetic", 1, 3)]
    assert composition(run_world("fresh", 0.3)[2]) == [("real", 2, 7), ("synthetic", 1, 3)]
    assert composition(run_world("accumulate", None)[3]) == [
        ("real", 0, N),
        ("synthetic", 0, N),
        ("synthetic", 1, N),
        ("synthetic", 2, N),
    ]


def test_pool_items_carry_their_ground_truth():
    pools = run_world("augment", 0.3)
    pool = pools[2]
    assert pool.synthetic.tolist() == [False] * 7 + [True] * 3
    assert pool.origin.tolist() == [0] * 7 + [1] * 3
    assert (pool.x[:, 7:] == 101.0).all()  # generation 1's published samples
    assert (pool.x[:, :7] == pools[0].x[:, :7]).all()  # augment reuses the same real items
    fresh = run_world("fresh", 0.3)
    assert not np.array_equal(fresh[2].x[:, :7], fresh[1].x[:, :7])  # fresh draws new real items


def test_counts_report_pool_and_kept_items():
    pool = run_world("fresh", 0.5)[1]
    keep = OperatingPointFilter(1.0, 0.0).keep(pool)
    counts = pool.counts(keep)
    assert (counts["pool_real"], counts["pool_synthetic"]) == (5, 5)
    assert counts["kept_real"].tolist() == [5, 5] and counts["kept_synthetic"].tolist() == [0, 0]


def test_operating_point_filter_rates_and_fixed_decisions():
    world = World(GaussianData(1), "fresh", 0.5, 20_000, 5, Streams(1, 1))
    world.training_pool(0)
    world.publish(np.zeros((1, 20_000, 1)), 0)
    pool = world.training_pool(1)
    keep = OperatingPointFilter(0.6, 0.1).keep(pool)
    synthetic = pool.synthetic
    assert 1 - keep[0, synthetic].mean() == pytest.approx(0.6, abs=0.02)  # TPR
    assert 1 - keep[0, ~synthetic].mean() == pytest.approx(0.1, abs=0.01)  # FPR
    assert np.array_equal(keep, OperatingPointFilter(0.6, 0.1).keep(pool))  # same item, same decision


def test_operating_points():
    assert operating_point("none") == (0.0, 0.0)
    assert operating_point("oracle") == (1.0, 0.0)
    assert operating_point("watermark") == DEFAULT_RATES["watermark"]
    assert operating_point("probe", tpr=0.7) == (0.7, DEFAULT_RATES["probe"][1])
    tpr, fpr = operating_point("all", rates={"watermark": (0.5, 0.0), "probe": (0.5, 0.1), "neardup": (0.0, 0.0)})
    assert (tpr, fpr) == pytest.approx((0.75, 0.1))  # any detector flags: independent detectors
    with pytest.raises(ConfigError, match="do not apply"):
        operating_point("all", tpr=0.3)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        operating_point("probe", fpr=1.5)


def test_rates_file_shapes(tmp_path):
    calibration = tmp_path / "calibration.json"
    calibration.write_text(
        json.dumps(
            {
                "detectors": {
                    "watermark": {"tpr": 0.4, "fpr": 0.001},
                    "probe": {"operating_point": {"recall": 0.8, "false_positive_rate": 0.02}},
                    "neardup": {"tpr": None, "fpr": 0.0},
                    "metadata": {"tpr": 0.1, "fpr": 0.0},
                },
                "combined": {"tpr": 0.9, "fpr": 0.02},
            }
        )
    )
    assert load_rates(calibration) == {"watermark": (0.4, 0.001), "probe": (0.8, 0.02), "metadata": (0.1, 0.0)}
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"neardup": {"tpr": 0.3, "fpr": 0.0}}))
    assert load_rates(flat) == {"neardup": (0.3, 0.0)}
    for bad, message in [
        ({"detectors": {"probe": {"tpr": 0.3}}}, "needs fpr"),
        ({"detectors": {"probe": {"tpr": 2, "fpr": 0}}}, "needs tpr"),
        ({"detectors": {"probe": {"tpr": True, "fpr": 0}}}, "needs tpr"),
        ({"detectors": {"combined": {}}}, "no measured rates"),
    ]:
        flat.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=message):
            load_rates(flat)
    flat.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_rates(flat)


def test_resolve_fills_defaults_and_notes_ignored_contamination():
    config, notes = resolve(SimConfig(loop="fully-synthetic", contamination=0.4, filter="watermark"))
    assert config.contamination == 1.0 and "ignored" in notes[0]
    assert (config.samples_per_gen, config.data, config.dim, config.test_size) == (100, "gaussian", 2, 100)
    assert (config.filter_tpr, config.filter_fpr) == DEFAULT_RATES["watermark"]
    assert resolve(config) == (config, [])  # resolving twice changes nothing
    accumulate, notes = resolve(SimConfig(loop="accumulate", contamination=0.2))
    assert accumulate.contamination is None and "grows" in notes[0]
    probe, notes = resolve(SimConfig(filter="probe", filter_rates=(("watermark", 0.4, 0.0),)))
    assert (probe.filter_tpr, probe.filter_fpr) == DEFAULT_RATES["probe"] and "no measured rates for probe" in notes[0]
    gmm, _ = resolve(SimConfig(model="gmm"))
    assert (gmm.data, gmm.samples_per_gen, gmm.contamination) == ("grid25", 1000, 0.5)


@pytest.mark.parametrize(
    "config, message",
    [
        (SimConfig(loop="sideways"), "--loop 'sideways' is not one of"),
        (SimConfig(contamination=1.5), "between 0 and 1"),
        (SimConfig(model="gmm", components=50, samples_per_gen=20), "exceeds"),
        (SimConfig(model="gmm", unbiased=True), "gaussian backend only"),
        (SimConfig(samples_per_gen=4), "PRDC with k=5"),
        (SimConfig(data="grid25", dim=3), "two-dimensional"),
        (SimConfig(metrics=("fid", "vibes")), "--metrics 'vibes'"),
    ],
)
def test_resolve_rejects_bad_settings(config, message):
    with pytest.raises(ConfigError, match=message):
        resolve(config)


def test_sweep_and_preset_plans():
    assert parse_sweep(["loop=fresh,augment", "bias=0.9,1", "unbiased=yes,no"]) == [
        ("loop", ["fresh", "augment"]),
        ("bias", [0.9, 1.0]),
        ("unbiased", [True, False]),
    ]
    for spec, message in [("seed=1,2", "cannot sweep"), ("loop", "expected key=v1"), ("bias=x", "could not convert")]:
        with pytest.raises(ConfigError, match=message):
            parse_sweep([spec])
    configs, notes = plan(SimConfig(), parse_sweep(["loop=fully-synthetic,fresh", "contamination=0.2,0.8"]))
    assert len(configs) == 3 and "duplicates" in notes[-1]  # fully-synthetic ignores contamination
    assert labels(configs) == ["fully-synthetic", "fresh c=0.2", "fresh c=0.8"]
    preset, _ = plan(SimConfig(), use_preset=True)
    assert [c.loop for c in preset] == ["fully-synthetic", "fresh", "fresh", "fresh", "accumulate"]
    assert labels(preset)[2] == "fresh c=0.5 filter=watermark"


def test_data_sources(tmp_path):
    rng = np.random.default_rng(0)
    grid = GridData()
    x = grid.draw(rng, 20_000)
    assert np.unique(np.round(x / 2)).tolist() == [-2, -1, 0, 1, 2]
    assert np.cov(x, rowvar=False) == pytest.approx(grid.cov, rel=0.05, abs=0.05)
    matrix = rng.standard_normal((300, 4))
    np.save(tmp_path / "features.npy", matrix)
    data = load_data(str(tmp_path / "features.npy"), None, 50)
    assert data.test.shape == (50, 4) and data.train.shape == (250, 4)
    drawn = data.draw(rng, 250)
    assert sorted(map(tuple, drawn)) == sorted(map(tuple, data.train))  # without replacement
    with pytest.raises(ConfigError, match="cannot draw"):
        data.draw(rng, 251)
    with pytest.raises(ConfigError, match="not gaussian, grid25"):
        load_data(str(tmp_path / "missing.npy"), None, 50)
    with pytest.raises(ConfigError, match="--dim 3 does not match"):
        load_data(str(tmp_path / "features.npy"), 3, 50)
