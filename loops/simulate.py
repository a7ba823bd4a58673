"""The self-consuming training loop (DESIGN.md, "Data flow: simulate") and `simulate()`.

`run_loop` is the algorithm, one configuration with all its repeats at once; `simulate` plans the
configurations, runs them with per-generation checkpoints, and writes the outputs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from loops.config import ConfigError, SimConfig, labels, parse_reweight, plan, scenario
from loops.data import load_data
from loops.metrics.features import IdentityFeatures
from loops.metrics.measures import measure
from loops.mitigate.filters import OperatingPointFilter
from loops.models import make_model
from loops.streams import Streams
from loops.world import World


@dataclass
class SimResult:
    """`rows`: one dict per generation x configuration x seed (what metrics.csv holds);
    `summary`: what summary.json holds; `out`: the output folder, if any."""

    configs: list[SimConfig]
    rows: list[dict]
    summary: dict
    out: Path | None


def simulate(
    config: SimConfig | list[SimConfig] | None = None,
    *,
    sweep=(),
    preset: bool | None = None,
    out=None,
    resume: bool = False,
    progress=None,
    from_scan=None,
    baseline: bool = False,
    fit_cache=None,
) -> SimResult:
    """Run self-consuming loops and measure every generation.

    config: one `SimConfig`, a list of them, or None for the built-in comparison (`preset`
        defaults to True exactly then). sweep: [(field, [values])] expanded as a product.
    out: folder for metrics.csv/json, curves.png, summary.json and checkpoints (None: no files).
    resume: continue the checkpointed run in `out` (same settings) instead of starting over.
    progress: called as progress(done, total) after each finished generation (restored ones included),
        counting generations over all configurations.
    from_scan: a scan's summary.json (or its folder): every configuration runs at the scan's
        estimated contamination and both ends of its interval, with the scan's calibrated rates.
    baseline: add the all-real control and each mitigated configuration's no-mitigation baseline
        (what `audit simulate` does unless --no-baseline), so the summary's `verdict` can compare.
    fit_cache: a folder shared by runs (of this call or others) where the diffusion backend keeps its
        generation-0 fits: a fit with the same seed, items and settings (generation 0 of every
        configuration of a seed on the same internet) is loaded instead of trained again. Results
        are unchanged.
    """
    started = time.perf_counter()
    bases = config if isinstance(config, list) else [config or scenario()]
    use_preset = config is None if preset is None else preset
    configs, notes = [], []
    scan_inputs = None
    if from_scan is not None:
        bases, scan_inputs = _from_scan(bases, from_scan)
        notes += scan_inputs.notes
    for base in bases:
        planned, base_notes = plan(base, sweep, use_preset, baseline)
        configs += [c for c in planned if c not in configs]
        notes += [n for n in base_notes if n not in notes]
    names = labels(configs)
    checkpoints = _checkpoint_root(out, resume)
    total = sum(c.generations + 1 for c in configs)
    done = [0]

    def on_generation(_generation: int) -> None:
        done[0] += 1
        progress(done[0], total)

    rows = []
    for i, (cfg, name) in enumerate(zip(configs, names)):
        folder = checkpoints / f"config-{i:03d}" if checkpoints else None
        grids = Path(out) / "samples" / f"config-{i:03d}" if out is not None else None
        rows += run_loop(
            cfg,
            name,
            checkpoint_dir=folder,
            on_generation=on_generation if progress else None,
            grid_dir=grids,
            fit_cache=fit_cache,
        )

    from loops.outputs.summary import build_summary, write_outputs

    summary = build_summary(configs, names, rows, notes, time.perf_counter() - started)
    summary["from_scan"] = scan_inputs.record() if scan_inputs else None
    result = SimResult(configs, rows, summary, Path(out) if out is not None else None)
    if out is not None:
        write_outputs(result)
    return result


def _from_scan(bases: list[SimConfig], path) -> tuple[list[SimConfig], object]:
    from loops.from_scan import read_scan

    inputs = read_scan(path)
    rates = tuple(sorted((n, t, f) for n, (t, f) in inputs.rates.items()))
    expanded = []
    for base in bases:
        if base.contamination is not None:
            raise ConfigError("--contamination and --from-scan both set the contamination; give one")
        expanded += [
            replace(base, contamination=c, from_scan=inputs.path, filter_rates=base.filter_rates or rates)
            for c in inputs.contaminations
        ]
    return expanded, inputs


def run_loop(
    cfg: SimConfig, name: str, checkpoint_dir=None, on_generation=None, grid_dir=None, fit_cache=None
) -> list[dict]:
    """All generations of one resolved configuration, its repeats vectorised as runs."""
    saved, checkpoint = _saved_state(cfg, checkpoint_dir)
    streams = Streams(cfg.seed, cfg.repeats)
    with tempfile.TemporaryDirectory(prefix="audit-curator-") as scratch:
        curator = Path(checkpoint_dir or scratch) / "curator"
        setup = build_setup(cfg, streams, curator, fresh=saved is None, fit_cache=fit_cache)
        world, model = setup.world, setup.model
        rows, start = [], 0
        if saved is not None:
            streams.restore(saved["streams"])
            world.restore(saved["blocks"])
            model.load_state(saved["model"])
            rows, start = saved["rows"], saved["generation"] + 1
            for g in range(start):
                if on_generation:
                    on_generation(g)
        for g in range(start, cfg.generations + 1):
            new_rows = _generation(cfg, name, g, setup, streams, grid_dir)
            rows += new_rows
            if checkpoint:
                checkpoint.save(g, new_rows, streams.state(), list(world.blocks.values()), model.state())
            if on_generation:
                on_generation(g)
    return rows


def _generation(cfg: SimConfig, name: str, g: int, setup, streams: Streams, grid_dir) -> list[dict]:
    """Pool, filter, (re)weight, fit, sample, publish, measure: one generation's rows."""
    started = time.perf_counter()
    world, model = setup.world, setup.model
    pool = world.training_pool(g)  # real + synthetic per loop type
    keep = setup.screen.keep(pool)  # what the filter lets through
    weights = keep.astype(np.float64)
    if cfg.reweight:
        weights *= _tail_weights(pool.x, keep, setup.features, parse_reweight(cfg.reweight))
    conditional = getattr(model, "conditional", False)
    fit_started = time.perf_counter()
    model.fit(pool.x, y=pool.y if conditional else None, weights=weights)
    sample_started = time.perf_counter()
    labels = _sample_labels(setup.data, streams, cfg.samples_per_gen) if conditional else None
    samples = model.sample(cfg.samples_per_gen, y=labels, bias=cfg.bias)
    sample_done = time.perf_counter()
    world.publish(samples, g, labels)
    if g == 0 and world.internet is not None and world.internet.needs_probe:
        _calibrate_probes(cfg, setup, streams)
    metrics = measure(model, samples, setup.test_features, cfg, setup.data, setup.features, setup.metric_cache)
    if grid_dir is not None and samples.ndim == 4:
        from loops.images.grids import save_grid

        save_grid(samples[0], Path(grid_dir) / f"g{g:03d}.png")
    timing = {
        "seconds_fit": sample_started - fit_started,
        "seconds_sample": sample_done - sample_started,
        "seconds_generation": time.perf_counter() - started,
    }
    return _rows(cfg, name, g, streams.seeds, pool, keep, metrics, timing)


@dataclass
class Setup:
    data: object
    world: World
    model: object
    screen: object
    features: object
    test_features: list
    metric_cache: dict = field(default_factory=dict)  # what the metrics derive from the fixed test set


def build_setup(cfg: SimConfig, streams: Streams, curator_dir: Path, fresh: bool = True, fit_cache=None) -> Setup:
    """Data, world, model, filter and feature space of one configuration (toy or image world).
    `fresh`: no checkpoint to restore, so a curator folder left by an interrupted start is cleared.
    `fit_cache`: the diffusion backend's shared fits (see `simulate`)."""
    if cfg.model != "diffusion":
        data = load_data(cfg.data, cfg.dim, cfg.test_size)
        world = World(data, cfg.loop, cfg.contamination, cfg.samples_per_gen, cfg.test_size, streams)
        features = IdentityFeatures()
        screen = OperatingPointFilter(cfg.filter_tpr, cfg.filter_fpr)
    else:
        from loops.images.world import image_parts

        if fresh:
            shutil.rmtree(curator_dir, ignore_errors=True)
        data, internet, features, screen = image_parts(cfg, streams, curator_dir)
        world = World(data, cfg.loop, cfg.contamination, cfg.samples_per_gen, cfg.test_size, streams, internet)
    model = make_model(cfg, streams.model, data, fit_cache)
    return Setup(data, world, model, screen, features, [features(t) for t in world.test])


def _tail_weights(x: np.ndarray, keep: np.ndarray, features, alpha: float | None) -> np.ndarray:
    """Per run, tail weights over the kept items (1 elsewhere; those have weight 0 anyway);
    alpha None: 1/(kept items)."""
    from loops.mitigate.reweight import tail_weights_batch

    return tail_weights_batch(np.stack([features(run) for run in x]), keep, alpha)


def _sample_labels(data, streams: Streams, n: int) -> np.ndarray:
    """Class labels to condition on, drawn from the real class histogram with each run's model stream."""
    p = data.class_histogram()
    return np.stack([rng.choice(len(p), size=n, p=p) for rng in streams.model])


def _calibrate_probes(cfg: SimConfig, setup: Setup, streams: Streams) -> None:
    """After generation 0: the curators train their probes on known real and generation-0 files."""
    internet = setup.world.internet
    real = np.stack([setup.data.draw(rng, cfg.probe_size)[0] for rng in streams.data])
    labels = _sample_labels(setup.data, streams, cfg.probe_size)
    synthetic = setup.model.sample(cfg.probe_size, y=labels, bias=cfg.bias)
    internet.train_probes(
        internet.publish_for_calibration(real, False), internet.publish_for_calibration(synthetic, True)
    )


def _saved_state(cfg: SimConfig, checkpoint_dir):
    """(saved state or None, checkpoint or None)."""
    if checkpoint_dir is None:
        return None, None
    from loops.outputs.checkpoint import Checkpoint

    checkpoint = Checkpoint(checkpoint_dir, cfg.to_dict())
    return checkpoint.load(), checkpoint


def _checkpoint_root(out, resume: bool) -> Path | None:
    if out is None:
        if resume:
            raise ValueError("resume needs the output folder of the interrupted run (out=...)")
        return None
    root = Path(out) / "checkpoint"
    if not resume:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(Path(out) / "samples", ignore_errors=True)
    return root


def _rows(
    cfg: SimConfig, name: str, g: int, seeds: list[int], pool, keep: np.ndarray, metrics: dict, timing: dict
) -> list[dict]:
    counts = pool.counts(keep)
    rates = detection_rates(pool, keep)
    kept_real, kept_synthetic = counts["kept_real"].tolist(), counts["kept_synthetic"].tolist()
    values = {metric: np.asarray(v, np.float64).tolist() for metric, v in metrics.items()}  # Python floats
    timed = {column: round(seconds, 3) for column, seconds in timing.items()}
    rows = []
    for r, seed in enumerate(seeds):
        kept = kept_real[r] + kept_synthetic[r]
        row = {
            "config": name,
            "model": cfg.model,
            "loop": cfg.loop,
            "contamination": cfg.contamination,
            "filter": cfg.filter,
            "bias": cfg.bias,
            "samples_per_gen": cfg.samples_per_gen,
            "seed": seed,
            "generation": g,
            "pool_real": counts["pool_real"],
            "pool_synthetic": counts["pool_synthetic"],
            "kept_real": kept_real[r],
            "kept_synthetic": kept_synthetic[r],
            "kept_synthetic_share": kept_synthetic[r] / kept if kept else None,
        }
        row.update({metric: v[r] for metric, v in values.items()})
        row.update({column: v[r] for column, v in rates.items()})
        row.update(timed)
        rows.append(row)
    return rows


def detection_rates(pool, keep: np.ndarray) -> dict[str, list]:
    """Against ground truth, per run: each detector's TPR/FPR on the pool (image worlds) and the
    filter's (items removed); None where the pool holds no synthetic (or no real) items."""
    synthetic = pool.synthetic[None, :]
    flagged = {f"{d}": pool.flag(d) for d in pool.detectors} | {"filter": ~keep}
    out = {}
    for name, hit in flagged.items():
        out[f"tpr_{name}"] = _rate(hit & synthetic, synthetic)
        out[f"fpr_{name}"] = _rate(hit & ~synthetic, ~synthetic)
    return out


def _rate(hits: np.ndarray, among: np.ndarray) -> list:
    total = int(among.sum())
    if not total:
        return [None] * len(hits)
    return (hits.sum(axis=1) / total).tolist()
