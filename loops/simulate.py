"""The self-consuming training loop (DESIGN.md, "Data flow: simulate") and `simulate()`.

`run_loop` is the algorithm, one configuration with all its repeats at once; `simulate` plans the
configurations, runs them with per-generation checkpoints, and writes the outputs.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loops.config import SimConfig, labels, plan
from loops.data import load_data
from loops.features import IdentityFeatures
from loops.metrics import measure
from loops.mitigate import OperatingPointFilter
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


def simulate(config: SimConfig | list[SimConfig] | None = None, *, sweep=(), preset: bool | None = None,
             out=None, resume: bool = False, progress=None) -> SimResult:
    """Run self-consuming loops and measure every generation.

    config: one `SimConfig`, a list of them, or None for the built-in comparison (`preset`
        defaults to True exactly then). sweep: [(field, [values])] expanded as a product.
    out: folder for metrics.csv/json, curves.png, summary.json and checkpoints (None: no files).
    resume: continue the checkpointed run in `out` (same settings) instead of starting over.
    progress: called as progress(done, total) after each finished generation (restored ones included),
        counting generations over all configurations.
    """
    started = time.perf_counter()
    bases = config if isinstance(config, list) else [config or SimConfig()]
    use_preset = config is None if preset is None else preset
    configs, notes = [], []
    for base in bases:
        planned, base_notes = plan(base, sweep, use_preset)
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
        rows += run_loop(cfg, name, checkpoint_dir=folder, on_generation=on_generation if progress else None)

    from loops.outputs import build_summary, write_outputs

    summary = build_summary(configs, names, rows, notes, time.perf_counter() - started)
    result = SimResult(configs, rows, summary, Path(out) if out is not None else None)
    if out is not None:
        write_outputs(result)
    return result


def run_loop(cfg: SimConfig, name: str, checkpoint_dir=None, on_generation=None) -> list[dict]:
    """All generations of one resolved configuration, its repeats vectorised as runs."""
    data = load_data(cfg.data, cfg.dim, cfg.test_size)
    streams = Streams(cfg.seed, cfg.repeats)
    world = World(data, cfg.loop, cfg.contamination, cfg.samples_per_gen, cfg.test_size, streams)
    model = make_model(cfg, streams.model)
    screen = OperatingPointFilter(cfg.filter_tpr, cfg.filter_fpr)
    features = IdentityFeatures()
    test_features = [features(t) for t in world.test]
    checkpoint, rows, start = _restore(cfg, checkpoint_dir, streams, world, model, on_generation)

    for g in range(start, cfg.generations + 1):
        pool = world.training_pool(g)                    # real + synthetic per loop type
        keep = screen.keep(pool)                         # what the filter lets through
        model.fit(pool.x, weights=keep.astype(np.float64))
        samples = model.sample(cfg.samples_per_gen, bias=cfg.bias)
        world.publish(samples, g)
        metrics = measure(model, samples, test_features, cfg, data, features)
        new_rows = _rows(cfg, name, g, streams.seeds, pool.counts(keep), metrics)
        rows += new_rows
        if checkpoint:
            checkpoint.save(g, new_rows, streams.state(), list(world.blocks.values()), model.state())
        if on_generation:
            on_generation(g)
    return rows


def _restore(cfg, checkpoint_dir, streams, world, model, on_generation):
    """(checkpoint or None, rows so far, first generation to run); restores the saved state."""
    if checkpoint_dir is None:
        return None, [], 0
    from loops.checkpoint import Checkpoint

    checkpoint = Checkpoint(checkpoint_dir, cfg.to_dict())
    saved = checkpoint.load()
    if saved is None:
        return checkpoint, [], 0
    streams.restore(saved["streams"])
    world.restore(saved["blocks"])
    model.load_state(saved["model"])
    if on_generation:
        for g in range(saved["generation"] + 1):
            on_generation(g)
    return checkpoint, saved["rows"], saved["generation"] + 1


def _checkpoint_root(out, resume: bool) -> Path | None:
    if out is None:
        if resume:
            raise ValueError("resume needs the output folder of the interrupted run (out=...)")
        return None
    root = Path(out) / "checkpoint"
    if not resume and root.exists():
        shutil.rmtree(root)
    return root


def _rows(cfg: SimConfig, name: str, g: int, seeds: list[int], counts: dict, metrics: dict) -> list[dict]:
    rows = []
    for r, seed in enumerate(seeds):
        kept = int(counts["kept_real"][r]) + int(counts["kept_synthetic"][r])
        row = {
            "config": name, "model": cfg.model, "loop": cfg.loop, "contamination": cfg.contamination,
            "filter": cfg.filter, "bias": cfg.bias, "samples_per_gen": cfg.samples_per_gen,
            "seed": seed, "generation": g,
            "pool_real": counts["pool_real"], "pool_synthetic": counts["pool_synthetic"],
            "kept_real": int(counts["kept_real"][r]), "kept_synthetic": int(counts["kept_synthetic"][r]),
            "kept_synthetic_share": int(counts["kept_synthetic"][r]) / kept if kept else None,
        }
        row.update({metric: float(values[r]) for metric, values in metrics.items()})
        rows.append(row)
    return rows
