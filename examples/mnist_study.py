"""The MNIST self-consuming-loop study (examples/mnist_loops.md explains it).

    .venv/bin/python examples/mnist_study.py --mnist ./mnist --plan full [--piece 1/8] [--commit]
    .venv/bin/python examples/mnist_study.py --mnist ./mnist --plan small --commit   # what ran on 2 CPU cores
    .venv/bin/python examples/mnist_study.py --mnist ./mnist --plan guidance --commit  # MAD's sampling bias
    .venv/bin/python examples/mnist_study.py --mnist ./mnist --plan filters --commit   # two operating points
    .venv/bin/python examples/mnist_study.py --mnist ./mnist --validate-metrics     # the metric table
    .venv/bin/python examples/mnist_study.py --mnist ./mnist --cfg-check            # agreement by w

Every (configuration, seed) is one run with its own result folder,
examples/results/<plan>/<configuration>/seed<S>/ (metrics.csv, diagnostics.csv: label agreement and
pixel histogram per generation, summary.json, sample grids of seed 0). Checkpoints live in --work
(not committed; --work/fits holds network fits that runs share, such as a seed's generation 0): an
interrupted run continues at its next generation when the command is run again,
finished runs are skipped, and `--commit` commits each run's folder as soon as it is written.
`--piece i/n` runs every n-th pending run from the i-th, so n shells (or n machines sharing the folders) share a plan.
At the end (or with --tables-only) it writes <plan>/study.csv (every run x generation),
<plan>/bands.md (mean and min-max over seeds), <plan>/verdicts.md (each seed-paper finding) and
<plan>/roughness.md (speckle in seed 0's sample grids, generation by generation).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from mnist_verdicts import verdicts, verdicts_markdown  # noqa: F401  (the study's verdicts)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "examples" / "results"
# metrics that pass loops/metrics/validate.py in the classifier's conv features (the study's space)
REPORTED = ("fid", "precision", "recall", "density", "coverage")
DIAGNOSTICS = ("label_agreement", "black_share", "background_mean", "class_entropy", "mean_confidence")
TABLE_COLUMNS = (
    "generation",
    *REPORTED,
    "class_entropy",
    "kept_synthetic",
    "kept_synthetic_share",
    "tpr_filter",
    "fpr_filter",
    "seconds_generation",
)

CONTAMINATIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _name(c: float) -> str:
    return f"fresh-c{c:g}"


# plan -> {configuration name: SimConfig changes}
PLANS = {
    # the design a reviewer asked for: c = 0 control, the contamination sweep, accumulate, guidance
    # w = 0, 1, 2 (MAD's sampling bias), and each filter at two operating points (a weaker one after
    # JPEG and resize on the way through the internet)
    "full": {
        **{_name(c): dict(loop="fresh", contamination=c) for c in CONTAMINATIONS},
        "accumulate": dict(loop="accumulate"),
        "fresh-c1-w1": dict(loop="fresh", contamination=1.0, guidance=1.0),
        "fresh-c1-w2": dict(loop="fresh", contamination=1.0, guidance=2.0),
        "fresh-c0.4-w2": dict(loop="fresh", contamination=0.4, guidance=2.0),
        "fresh-c0.4-jpeg75-resize0.5": dict(loop="fresh", contamination=0.4, jpeg_quality=75, resize=0.5),
        "fresh-c0.4-filter-watermark": dict(loop="fresh", contamination=0.4, filter="watermark"),
        "fresh-c0.4-filter-watermark-jpeg75-resize0.5": dict(
            loop="fresh", contamination=0.4, filter="watermark", jpeg_quality=75, resize=0.5
        ),
        "fresh-c0.4-filter-all-bank0.25": dict(loop="fresh", contamination=0.4, filter="all", bank_rate=0.25),
        "fresh-c0.4-filter-all-bank0.9-jpeg75-resize0.5": dict(
            loop="fresh", contamination=0.4, filter="all", jpeg_quality=75, resize=0.5, bank_rate=0.9
        ),
    },
    # what fits about six hours on 2 CPU cores: the contamination sweep (with its c = 0 control) and accumulate
    "small": {
        **{_name(c): dict(loop="fresh", contamination=c) for c in CONTAMINATIONS},
        "accumulate": dict(loop="accumulate"),
    },
}
# MAD's sampling bias alone, the full plan's c = 1 runs at w = 0, 2, 1, read before recall saturates
# (the guided loop's reached 0 by generation 3 at 800 steps, examples/results/guidance-small/)
PLANS["guidance"] = {name: PLANS["full"][name] for name in ("fresh-c1", "fresh-c1-w2", "fresh-c1-w1")}
# the filters at c = 0.4, each at its two operating points, against no filter on the same internet (JPEG
# and resize reach real and synthetic files alike), at generation 1: the first generation whose pool
# holds synthetic images, so the one where a filter's effect is not yet compounded
PLANS["filters"] = {n: c for n, c in PLANS["full"].items() if c.get("contamination") == 0.4 and "guidance" not in c}
# per plan: the loop's sizes (all plans use the cpu network, 16x16). "full" trains every generation
# for the same 300 epochs of its pool (2,344 steps of 128 on 1,000 items, 23,438 on accumulate's
# 10,000 items at generation 9): at 1,000 test images generation 0 is at 1.5-1.6x the FID floor after
# 300 epochs and 2.3-2.9x after 150 (examples/results/generation0/). "small" keeps the fixed 800
# steps it ran with (about 100 epochs at 1,000 items, 10 at accumulate's 10,000).
PLAN_SETTINGS = {
    "full": dict(generations=9, seeds=5, train_epochs=300, samples_per_gen=1000, test_size=1000),
    "small": dict(generations=9, seeds=3, train_steps=800, samples_per_gen=1000, test_size=1000),
    "guidance": dict(generations=3, seeds=3, train_epochs=300, samples_per_gen=1000, test_size=1000),
    "filters": dict(generations=1, seeds=3, train_epochs=300, samples_per_gen=1000, test_size=1000),
}
QUICK = dict(
    samples_per_gen=40, test_size=30, train_steps=2, train_epochs=None, sample_steps=2, probe_size=20
)  # --quick: smoke run


def base_config(dataset: str, settings: dict, seed: int, quick: bool = False):
    from loops.config import SimConfig

    config = SimConfig(
        dataset=dataset,
        model="diffusion",
        diffusion_preset="cpu",
        device="cpu",
        samples_per_gen=settings["samples_per_gen"],
        test_size=settings["test_size"],
        generations=settings["generations"],
        seed=seed,
        repeats=1,
        train_steps=settings.get("train_steps"),
        train_epochs=settings.get("train_epochs"),
        probe_embedder=settings.get("probe_embedder", "random:tiny"),  # a random-weight embedder: cheap on CPU
        probe_size=500,
    )
    return replace(config, **QUICK) if quick else config


def runs_of(plan: str, settings: dict, only=None) -> list[tuple[str, int]]:
    """Configuration-major, so runs in flight together have different seeds: a seed's generation 0 is the
    same fit in every configuration (real images only), trained by the first run and loaded by the rest."""
    names = [n for n in PLANS[plan] if not only or n in only]
    return [(name, seed) for name in names for seed in range(settings["seeds"])]


def run_folder(results: Path, plan: str, name: str, seed: int) -> Path:
    return results / plan / name / f"seed{seed}"


def run_one(
    plan: str, name: str, seed: int, dataset: str, work: str, settings: dict, quick: bool, results: Path
) -> tuple[str, int]:
    """Run (or resume) one (configuration, seed); copy its small outputs into its result folder."""
    from loops.images.world import classifier, load_dataset
    from loops.simulate import simulate

    config = replace(base_config(dataset, settings, seed, quick), **PLANS[plan][name])
    out = Path(work) / plan / name / f"seed{seed}"
    diagnostics_path = out / "diagnostics.jsonl"
    done = (
        {json.loads(line)["generation"] for line in diagnostics_path.read_text().splitlines()}
        if diagnostics_path.is_file()
        else set()
    )

    def after_generation(count: int, _total: int) -> None:  # called once the checkpoint is written
        g = count - 1
        block = out / "checkpoint" / "config-000" / "blocks" / f"synthetic-g{g:03d}.npz"
        if g in done or not block.is_file():
            return
        from loops.config import resolve

        resolved = resolve(config)[0]
        data = load_dataset(resolved.dataset, 16, resolved.test_size)
        judge = classifier(resolved.dataset, 16, resolved.test_size)
        with np.load(block) as saved:
            images, labels = saved["x"][0], saved["y"][0]
        row = {"generation": g, **generation_diagnostics(images, labels, judge), **pixel_reference(data)}
        with open(diagnostics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        done.add(g)

    simulate(config, out=out, resume=True, progress=after_generation, fit_cache=Path(work) / "fits")
    target = run_folder(results, plan, name, seed)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in ("metrics.csv", "summary.json"):
        shutil.copy(out / file, target / file)
    rows = sorted(
        (json.loads(line) for line in diagnostics_path.read_text().splitlines()), key=lambda r: r["generation"]
    )
    _write_csv(target / "diagnostics.csv", rows)
    if seed == 0:
        (target / "samples").mkdir()
        for grid in sorted((out / "samples" / "config-000").glob("g*.png")):
            shutil.copy(grid, target / "samples" / grid.name)
    return name, seed


def generation_diagnostics(images: np.ndarray, labels: np.ndarray, judge) -> dict[str, float]:
    """Label agreement (the judge's class = the class the sample was conditioned on) and the pixel
    histogram: share of exactly-black pixels, mean of the pixels the judge's real data keeps dark."""
    predicted = judge.probabilities(images).argmax(1)
    return {"label_agreement": float((predicted == labels).mean()), **pixel_histogram(images)}


def pixel_histogram(images: np.ndarray) -> dict[str, float]:
    """Share of exactly-black pixels (0), of pixels below 32, the mean of the 4-pixel border
    (background in MNIST) in 0..255, and the mean roughness (speckle shows there)."""
    images = np.asarray(images)
    border = np.concatenate(
        [images[:, :4].ravel(), images[:, -4:].ravel(), images[:, 4:-4, :4].ravel(), images[:, 4:-4, -4:].ravel()]
    )
    return {
        "black_share": float((images == 0).mean()),
        "dark_share": float((images < 32).mean()),
        "background_mean": float(border.mean()),
        "roughness": float(roughness(images).mean()),
    }


def roughness(images: np.ndarray) -> np.ndarray:
    """Per image: the mean absolute difference between neighbouring pixels (0..255), across and down."""
    x = np.asarray(images, np.float32)
    return (np.abs(np.diff(x, axis=1)).mean((1, 2)) + np.abs(np.diff(x, axis=2)).mean((1, 2))) / 2


def roughness_markdown(results: Path, plan: str, real_images: np.ndarray) -> str:
    """Seed 0's sample grids (64 samples a generation): mean roughness, and the share of samples
    rougher than 99 % of the real test images (speckled or noise-like samples)."""
    from loops.images.grids import load_grid

    real = roughness(real_images)
    limit = float(np.quantile(real, 0.99))
    table = {}
    for name in PLANS[plan]:
        grids = sorted((run_folder(results, plan, name, 0) / "samples").glob("g*.png"))
        table[name] = [roughness(load_grid(g, real_images.shape[1])) for g in grids]
    columns = max(map(len, table.values()), default=0)
    lines = [
        f"Real test images: roughness {real.mean():.1f}, 99th percentile {limit:.1f}. "
        "Cells: mean roughness / share of samples above that percentile (seed 0, 64 samples).",
        "",
        "| configuration | " + " | ".join(f"g{g}" for g in range(columns)) + " |",
        "|---|" + "---|" * columns,
    ]
    lines += [
        f"| {name} | " + " | ".join(f"{c.mean():.0f} / {(c > limit).mean():.2f}" for c in cells) + " |"
        for name, cells in table.items()
        if cells
    ]
    return "\n".join(lines) + "\n"


def pixel_reference(data) -> dict[str, float]:
    return {f"real_{k}": v for k, v in pixel_histogram(data.test_images).items()}


def finished(results: Path, plan: str, name: str, seed: int, generations: int) -> bool:
    summary = run_folder(results, plan, name, seed) / "summary.json"
    if not summary.is_file():
        return False
    final = json.loads(summary.read_text())["final"]
    return all(entry["generation"] >= generations for entry in final.values())


def commit(paths: list[Path], message: str) -> None:
    """Commit these paths only; a failure is reported, not fatal."""
    paths = [str(p) for p in paths if p.exists()]
    for command in (["git", "add", *paths], ["git", "commit", "-q", "-m", message, "--", *paths]):
        done = subprocess.run(command, cwd=ROOT)
        if done.returncode:
            print(f"could not commit ({' '.join(command[:2])} exited {done.returncode}); commit {paths} by hand")
            return


# ---------------------------------------------------------------- tables, bands and verdicts


def load_rows(results: Path, plan: str) -> list[dict]:
    """Every finished generation of every run of the plan: metrics joined with diagnostics."""
    rows = []
    for name in PLANS[plan]:
        for folder in sorted((results / plan / name).glob("seed*")):
            metrics = folder / "metrics.csv"
            if not metrics.is_file():
                continue
            with open(metrics, newline="") as f:
                by_generation = {int(r["generation"]): r for r in csv.DictReader(f)}
            extra = {}
            if (folder / "diagnostics.csv").is_file():
                with open(folder / "diagnostics.csv", newline="") as f:
                    extra = {int(r["generation"]): r for r in csv.DictReader(f)}
            for g, r in sorted(by_generation.items()):
                row = {"config": name, "seed": int(folder.name[4:]), "generation": g}
                row.update({k: _float(r.get(k)) for k in TABLE_COLUMNS[1:]})
                row.update({k: _float(extra.get(g, {}).get(k)) for k in (*DIAGNOSTICS[:3], "dark_share", "roughness")})
                row.update({k: _float(r.get(k)) for k in DIAGNOSTICS[3:]})
                rows.append(row)
    return rows


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def bands(rows: list[dict], metric: str) -> dict[tuple[str, int], tuple[float, float, float, int]]:
    """(config, generation) -> (mean, min, max, seeds) of one metric over seeds."""
    grouped: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        if np.isfinite(r[metric]):
            grouped.setdefault((r["config"], r["generation"]), []).append(r[metric])
    return {k: (float(np.mean(v)), float(np.min(v)), float(np.max(v)), len(v)) for k, v in grouped.items()}


def bands_markdown(rows: list[dict]) -> str:
    """Mean (min-max) over seeds by configuration and generation: every generation of a short plan,
    every other one of a long plan."""
    last = max(r["generation"] for r in rows)
    generations = range(last + 1) if last <= 5 else (0, 1, 3, 5, 7, 9)
    metrics = (
        "fid",
        "recall",
        "coverage",
        "precision",
        "density",
        "label_agreement",
        "class_entropy",
        "black_share",
        "background_mean",
        "roughness",
    )
    table = {m: bands(rows, m) for m in metrics}
    configs = list(dict.fromkeys(r["config"] for r in rows))
    lines = ["| configuration | g | seeds | " + " | ".join(metrics) + " |", "|---|---|---|" + "---|" * len(metrics)]
    for name in configs:
        for g in generations:
            if (name, g) not in table["fid"]:
                continue
            cells = []
            for m in metrics:
                mean, lo, hi, n = table[m].get((name, g), (float("nan"),) * 3 + (0,))
                digits = ".3g" if m in ("fid", "background_mean", "roughness") else ".3f"
                fewer = (
                    f" [{n} seed{'s' * (n != 1)}]" if n != table["fid"][(name, g)][3] else ""
                )  # a diagnostic added later
                cells.append(f"{mean:{digits}} ({lo:{digits}}–{hi:{digits}}){fewer}")
            lines.append(f"| {name} | {g} | {table['fid'][(name, g)][3]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def metric_levels(results: Path) -> tuple[float | None, float | None]:
    """The study space's FID floor (real vs real) and saturation (uniform noise) from the metric
    validation, or (None, None) before it has run."""
    path = results / "metric-validation.json"
    if not path.is_file():
        return None, None
    saved = json.loads(path.read_text())
    return saved.get("floor", {}).get("fid"), saved.get("saturation", {}).get("fid")


TABLES = ("study.csv", "bands.md", "verdicts.md", "roughness.md")


def write_tables(results: Path, plan: str, real_images: np.ndarray) -> None:
    rows = load_rows(results, plan)
    if not rows:
        return
    _write_csv(results / plan / "study.csv", rows)
    (results / plan / "bands.md").write_text(bands_markdown(rows))
    (results / plan / "verdicts.md").write_text(verdicts_markdown(rows, *metric_levels(results)))
    (results / plan / "roughness.md").write_text(roughness_markdown(results, plan, real_images))


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------- checks that gate the study


def validate_metrics_table(dataset: str, results: Path, n: int = 1000) -> dict:
    """The metric validation in the study's feature space (and two others): on/off degradations and
    severity ramps of real images the classifier never trained on (one half of the test split
    against the other), the FID floor at the study's sample size, and each metric's saturation."""
    from loops.images.world import classifier, load_dataset
    from loops.metrics.measures import fid
    from loops.metrics.validate import check, markdown, ramp_checks, ramps_markdown, severity_ramps, validate_metrics

    data = load_dataset(dataset, 16, n)
    conv = classifier(dataset, 16, n)
    half = n // 2
    reference, held_out, held_labels = data.test_images[:half], data.test_images[half:], data.test_labels[half:]
    spaces = {
        "cnn conv (study)": conv,
        "cnn penultimate (old)": conv.at_layer("penultimate"),
        "pixels": lambda x: np.asarray(x, np.float64).reshape(len(x), -1) / 255.0,
    }
    tables = {name: validate_metrics(f, reference, held_out, held_labels, n=half) for name, f in spaces.items()}
    ramps = severity_ramps(conv, reference, held_out, held_labels)
    test = conv(data.test_images)
    floors = {
        "study size: 1,000 training images vs the 1,000 test images": fid(conv(data.train_images[:n]), test),
        "held-out halves: 500 test images vs the other 500": tables["cnn conv (study)"]["real"]["fid"],
        "seen at the same size: 500 training images vs 500 test images": fid(
            conv(data.train_images[:half]), conv(reference)
        ),
    }
    saturation = tables["cnn conv (study)"]["noise"]
    results.mkdir(parents=True, exist_ok=True)
    (results / "metric-validation.md").write_text(validation_markdown(tables, ramps, floors, saturation))
    (results / "metric-validation.json").write_text(
        json.dumps(
            {
                "floor": {"fid": floors[next(iter(floors))], "n": n},
                "floors": floors,
                "saturation": saturation,
                "spaces": {name: {"table": t, "checks": check(t)} for name, t in tables.items()},
                "ramps": ramps,
                "ramp_checks": ramp_checks(ramps),
            },
            indent=1,
        )
    )
    print(markdown(tables), ramps_markdown(ramps), sep="\n")
    return tables


def validation_markdown(tables: dict, ramps: dict, floors: dict, saturation: dict) -> str:
    from loops.metrics.validate import markdown, ramp_checks, ramps_markdown

    failed = [
        f"{c['ramp']}: {c['metric']} goes {c['direction']} in only some steps"
        for c in ramp_checks(ramps)
        if not c["ok"]
    ]
    return "\n".join(
        [
            "Real images: the 1,000-image test split, never seen by the feature classifier: 500 are the reference, "
            "the other 500 are degraded. ✗ marks an expectation that failed (loops/metrics/validate.py).",
            "",
            "## On/off degradations",
            "",
            markdown(tables),
            "## Severity ramps (study space)",
            "",
            ramps_markdown(ramps),
            "Failed directions: " + ("; ".join(failed) if failed else "none") + ".",
            "",
            "## FID floor",
            "",
            *(f"- {name}: {value:.2f}" for name, value in floors.items()),
            "",
            "## Saturation (uniform noise, study space)",
            "",
            ", ".join(f"{m} {v:.3g}" for m, v in saturation.items())
            + ". A FID near the noise level cannot rank two runs: both are as far from MNIST as noise is.",
            "",
        ]
    )


def steps_at_generation_zero(settings: dict) -> int:
    """Training steps on the first pool (samples_per_gen items) of an epoch-scaled plan."""
    from loops.models.diffusion import PRESETS

    return replace(PRESETS["cpu"], train_epochs=settings["train_epochs"]).steps_for(settings["samples_per_gen"])


def cfg_check(dataset: str, results: Path, train_steps: int, n: int = 500, seed: int = 0) -> dict:
    """Generation 0 of the study (1,000 real images, cpu network, `train_steps`): FID against the
    real-vs-real floor, pixel histogram, and label agreement at w = 0, 1, 2 (must not fall with w)."""
    from loops.images.world import classifier, load_dataset
    from loops.metrics.measures import fid, prdc
    from loops.models.diffusion import PRESETS, DiffusionModel

    data, judge = load_dataset(dataset, 16, 1000), classifier(dataset, 16, 1000)
    x, y = data.draw(np.random.default_rng(seed), 1000)
    model = DiffusionModel(
        [np.random.default_rng(seed + 1)], replace(PRESETS["cpu"], train_steps=train_steps), data.classes
    )
    started = time.perf_counter()
    model.fit(x[None], y[None])
    report = {"train_steps": train_steps, "samples": n, "seconds_fit": time.perf_counter() - started}
    real = judge(data.test_images[:n])
    report["floor"] = {"fid": fid(judge(data.train_images[:n]), real), **pixel_histogram(data.test_images[:n])}
    labels = np.random.default_rng(seed + 2).integers(data.classes, size=n)
    for w in (0.0, 1.0, 2.0):
        samples = model.sample(n, y=labels[None], bias=1 / (1 + w))[0]
        features = judge(samples)
        report[f"w={w:g}"] = {
            "fid": fid(features, real),
            **prdc(real, features, 5),
            **generation_diagnostics(samples, labels, judge),
        }
    agreement = [report[f"w={w:g}"]["label_agreement"] for w in (0, 1, 2)]
    report["agreement_does_not_fall"] = bool(agreement[2] >= agreement[0] - 0.01)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"cfg-check-{train_steps}.json").write_text(json.dumps(report, indent=1))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default=None, help="your MNIST folder (idx files, any splits)")
    parser.add_argument("--dataset", default=None, help="another --dataset spec instead of mnist:MNIST")
    parser.add_argument("--plan", choices=list(PLANS), default="full")
    parser.add_argument("--results", default=str(RESULTS), help="where the small outputs go")
    parser.add_argument("--work", default=str(ROOT / "study-work"), help="checkpoints (not committed)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run of the same code")
    parser.add_argument("--generations", type=int, default=None, help="override the plan's generations")
    parser.add_argument("--seeds", type=int, default=None, help="override the plan's number of seeds")
    parser.add_argument("--train-steps", type=int, default=None, help="override the plan's training steps")
    parser.add_argument(
        "--probe-embedder",
        default=None,
        help="the curators' probe and near-duplicate embedder (default random:tiny; onnx:clip-vit-b16-int8 for the "
        "real CLIP encoder); give other --results and --work folders, the runs differ",
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one CPU thread each)")
    parser.add_argument("--piece", default="1/1", help="i/n: run only every n-th pending run, from the i-th")
    parser.add_argument("--only", nargs="*", help="run only these configurations of the plan")
    parser.add_argument("--commit", action="store_true", help="git-commit each run's results as it finishes")
    parser.add_argument("--tables-only", action="store_true")
    parser.add_argument("--validate-metrics", action="store_true", help="write the metric validation table")
    parser.add_argument("--cfg-check", action="store_true", help="agreement by guidance weight at generation 0")
    args = parser.parse_args()
    results = Path(args.results).resolve()
    if args.dataset:
        dataset = args.dataset
    elif args.mnist:
        dataset = f"mnist:{Path(args.mnist).resolve()}"
    else:
        parser.error("give --mnist FOLDER (or --dataset SPEC)")
    settings = dict(PLAN_SETTINGS[args.plan])
    for key in ("generations", "seeds", "train_steps", "probe_embedder"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.train_steps is not None:
        settings["train_epochs"] = None
    if args.validate_metrics:
        validate_metrics_table(dataset, results)
        return
    if args.cfg_check:
        print(
            json.dumps(
                cfg_check(dataset, results, settings.get("train_steps") or steps_at_generation_zero(settings)), indent=1
            )
        )
        return
    unknown = set(args.only or ()) - set(PLANS[args.plan])
    if unknown:
        parser.error(f"not in plan {args.plan}: {', '.join(sorted(unknown))}")
    index, _, count = args.piece.partition("/")
    index, count = int(index), int(count or 1)
    wanted = [] if args.tables_only else runs_of(args.plan, settings, args.only)
    pending = [r for r in wanted if not finished(results, args.plan, *r, settings["generations"])]
    pending = pending[index - 1 :: count]
    from loops.images.world import load_dataset

    real = load_dataset(dataset, 16, base_config(dataset, settings, 0, args.quick).test_size).test_images
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(run_one, args.plan, name, seed, dataset, args.work, settings, args.quick, results)
            for name, seed in pending
        ]
        for future in as_completed(futures):
            name, seed = future.result()
            print(f"finished {name} seed {seed}", flush=True)
            write_tables(results, args.plan, real)
            if args.commit:
                commit(
                    [run_folder(results, args.plan, name, seed), *(results / args.plan / t for t in TABLES)],
                    f"MNIST study ({args.plan}): {name} seed {seed}",
                )
    write_tables(results, args.plan, real)


if __name__ == "__main__":
    sys.exit(main())
