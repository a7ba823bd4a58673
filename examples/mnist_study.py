"""The MNIST self-consuming-loop study (examples/mnist_loops.md explains it).

    .venv/bin/python examples/mnist_study.py --mnist ./mnist [--jobs 2] [--commit]

Runs each configuration below with the diffusion backend at the CPU preset and writes its small
outputs (metrics.csv, summary.json, curves.png, sample grids) to examples/results/<name>/ as it
finishes; checkpoints live in --work (not committed), so an interrupted study continues where it
stopped when run again, and finished configurations are skipped. `--commit` commits each
configuration's results as soon as they are written, so a study can span sessions.
At the end (or with --tables-only) it writes examples/results/study.csv, study.md and
study-curves.png (the main metrics of every configuration on shared axes).
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "examples" / "results"
KEPT_FILES = ("metrics.csv", "summary.json", "curves.png")
CURVE_METRICS = ("fid", "precision", "recall", "density", "coverage", "class_entropy")
TABLE_METRICS = ("fid", "precision", "recall", "density", "coverage", "class_entropy", "mean_confidence",
                 "kept_synthetic", "tpr_filter", "fpr_filter", "seconds_generation", "seconds_fit", "seconds_sample")

# name -> SimConfig changes, most informative first (two run at a time with --jobs 2)
CONFIGS = {
    "fully-synthetic": dict(loop="fully-synthetic"),
    "fresh-c0.4": dict(loop="fresh", contamination=0.4),
    "fresh-c0.4-filter-watermark": dict(loop="fresh", contamination=0.4, filter="watermark"),
    "fresh-c0.4-filter-all": dict(loop="fresh", contamination=0.4, filter="all"),
    "fresh-c0.4-reweight-tails": dict(loop="fresh", contamination=0.4, reweight="tails:0.02"),
    "fully-synthetic-w2": dict(loop="fully-synthetic", guidance=2.0),
    "fresh-c0.5": dict(loop="fresh", contamination=0.5),
    "augment-c0.5": dict(loop="augment", contamination=0.5),
}


QUICK = dict(samples_per_gen=40, test_size=30, train_steps=2, sample_steps=2, probe_size=20)  # --quick: a smoke run


def base_config(dataset: str, generations: int, train_steps: int, quick: bool = False):
    from loops.config import SimConfig

    config = SimConfig(dataset=dataset, model="diffusion", diffusion_preset="cpu", device="cpu",
                       samples_per_gen=1000, test_size=1000, generations=generations, seed=0,
                       train_steps=train_steps, probe_embedder="random:tiny", probe_size=500)
    return replace(config, **QUICK) if quick else config


def run_one(name: str, dataset: str, work: str, generations: int, train_steps: int, quick: bool,
            results: Path) -> str:
    """Run (or resume) one configuration; copy its small outputs into results/<name>/."""
    from loops.simulate import simulate

    config = replace(base_config(dataset, generations, train_steps, quick), **CONFIGS[name])
    out = Path(work) / name
    simulate(config, out=out, resume=True)
    target = results / name
    shutil.rmtree(target, ignore_errors=True)
    (target / "samples").mkdir(parents=True)
    for file in KEPT_FILES:
        shutil.copy(out / file, target / file)
    for grid in sorted((out / "samples" / "config-000").glob("g*.png")):
        shutil.copy(grid, target / "samples" / grid.name)
    return name


def finished(results: Path, name: str, generations: int) -> bool:
    summary = results / name / "summary.json"
    if not summary.is_file():
        return False
    final = json.loads(summary.read_text())["final"]
    return all(entry["generation"] >= generations for entry in final.values())


def commit(results: Path, name: str) -> None:
    """Commit one configuration's results (only those paths); a failure is reported, not fatal."""
    shared = ("study.csv", "study.md", "study-curves.png")
    paths = [str(results / name), *(str(results / f) for f in shared if (results / f).exists())]
    message = f"MNIST study: results of {name}"
    for command in (["git", "add", *paths], ["git", "commit", "-q", "-m", message, "--", *paths]):
        done = subprocess.run(command, cwd=ROOT)
        if done.returncode:
            print(f"could not commit {name} ({' '.join(command[:2])} exited {done.returncode}); commit it by hand")
            return


def write_tables(results: Path) -> None:
    """study.csv (every configuration x generation, seed 0) and study.md (the same as a table)."""
    rows = []
    for name in CONFIGS:
        path = results / name / "metrics.csv"
        if path.is_file():
            with open(path, newline="") as f:
                rows += [{"study_config": name, **{k: r.get(k, "") for k in ("generation", *TABLE_METRICS)}}
                         for r in csv.DictReader(f)]
    if not rows:
        return
    columns = list(rows[0])
    with open(results / "study.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_short(r[c]) for c in columns) + " |" for r in rows]
    (results / "study.md").write_text("\n".join(lines) + "\n")


def write_curves(results: Path) -> None:
    """study-curves.png: the main metrics of every finished configuration on shared axes."""
    from loops.outputs.curves import plot_curves

    curves = {}
    for name in CONFIGS:
        path = results / name / "summary.json"
        if path.is_file():
            entry = next(iter(json.loads(path.read_text())["curves"].values()))
            curves[name] = {k: v for k, v in entry.items() if k in ("generation", *CURVE_METRICS)}
    if curves:
        plot_curves(curves, results / "study-curves.png")


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.3g}" if not number.is_integer() else str(int(number))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default=str(ROOT.parent / "shared" / "data" / "mnist"),
                        help="folder with MNIST idx files (any splits)")
    parser.add_argument("--dataset", default=None, help="another --dataset spec instead of mnist:MNIST")
    parser.add_argument("--results", default=str(RESULTS), help="where the small outputs go")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run of the same code")
    parser.add_argument("--work", default=str(ROOT / "study-work"), help="checkpoints (not committed)")
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1, help="configurations run at once (one CPU thread each)")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="run only these configurations")
    parser.add_argument("--commit", action="store_true", help="git-commit each configuration's results")
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args()
    results = Path(args.results).resolve()
    dataset = args.dataset or f"mnist:{Path(args.mnist).resolve()}"
    wanted = [] if args.tables_only else (args.only or list(CONFIGS))
    pending = [n for n in wanted if not finished(results, n, args.generations)]
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, n, dataset, args.work, args.generations, args.train_steps, args.quick,
                               results) for n in pending]
        for future in as_completed(futures):
            name = future.result()
            print(f"finished {name}", flush=True)
            write_tables(results)
            write_curves(results)
            if args.commit:
                commit(results, name)
    write_tables(results)
    write_curves(results)


if __name__ == "__main__":
    sys.exit(main())
