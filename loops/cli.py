"""`audit simulate`: thin command line over `loops.simulate`; rich progress and messages on stderr,
the table (or --format json) on stdout. Exit codes: 0 ok, 2 usage or input error, 130 interrupted."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click
from click.core import ParameterSource
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audit.report.console import SafeConsole as Console  # prints the data's control characters escaped
from loops.config import FILTERS, LOOPS, METRICS, MODELS, SCENARIO_BIAS
from loops.outputs.explain import COLUMNS, KEPT_COLUMN

stderr = Console(stderr=True)
PIPE_WIDTH = 140  # table width when stdout is not a terminal (logs, CI)
# Options that define which loops run; when none is given the built-in comparison runs.
LOOP_OPTIONS = ("loop", "contamination", "filter", "filter_tpr", "filter_fpr", "sweep", "from_scan")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=None,
    help="Generative backend [default: diffusion with --dataset, else gaussian].",
)
@click.option(
    "--loop",
    type=click.Choice(LOOPS),
    default="fresh",
    show_default=True,
    help="What each generation trains on (see README).",
)
@click.option(
    "--contamination",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of synthetic items in each training pool [default: 0.5; 1 for fully-synthetic].",
)
@click.option(
    "--samples-per-gen",
    type=click.IntRange(2),
    default=None,
    help="Training pool size and samples drawn per generation [default: 100 gaussian, 1000 gmm].",
)
@click.option(
    "--generations",
    type=click.IntRange(0),
    default=None,
    help="Generations after generation 0 [default: 30 gaussian, 10 gmm].",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=None,
    help="Runs (seeds) per configuration [default: 10 gaussian, 3 gmm].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Run r uses seed + r.")
@click.option(
    "--bias",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help=f"Sampling bias lambda (MAD): covariances are scaled by it when sampling "
    f"[default: {SCENARIO_BIAS:g} for the toy backends, 1 (no guidance) for diffusion].",
)
@click.option("--unbiased", is_flag=True, help="Gaussian: refit with the unbiased covariance instead of MLE.")
@click.option(
    "--dim",
    type=click.IntRange(1),
    default=None,
    help="Dimensions of --data gaussian, or PCA dimensions of mnist:DIR [default: 2, 16].",
)
@click.option("--components", type=click.IntRange(1), default=25, show_default=True, help="GMM components K.")
@click.option(
    "--data",
    default=None,
    help="Real data: gaussian, grid25 (MAD's 25 modes), mnist:DIR (PCA of idx files) or a .npy/.csv "
    "feature matrix [default: gaussian for gaussian, grid25 for gmm].",
)
@click.option(
    "--dataset",
    default=None,
    help="Labelled images for the diffusion backend: mnist:DIR (idx files), a folder of class "
    "subfolders, or hf:NAME[:split] (needs the Hub or its cache).",
)
@click.option(
    "--guidance",
    type=click.FloatRange(0),
    default=None,
    help="Diffusion: classifier-free guidance weight w (or give --bias lambda = 1/(1+w)) [default: 0].",
)
@click.option(
    "--diffusion-preset",
    type=click.Choice(["cpu", "gpu"]),
    default=None,
    help="Diffusion network and training size [default: gpu on CUDA, else cpu].",
)
@click.option("--train-steps", type=click.IntRange(1), default=None, help="Diffusion: training steps per generation.")
@click.option(
    "--train-epochs",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Diffusion: training epochs of each generation's pool instead of fixed steps (a growing pool "
    "gets more steps).",
)
@click.option("--sample-steps", type=click.IntRange(1), default=None, help="Diffusion: DDIM sampling steps.")
@click.option("--device", default=None, help="Diffusion: torch device [default: cuda when available].")
@click.option(
    "--reweight",
    default=None,
    metavar="tails[:ALPHA]",
    help="Weight training items by k-NN density^-ALPHA in feature space (ALPHA default 1/N, N the "
    "pool size: it cancels the Gaussian fit's expected shrinkage).",
)
@click.option(
    "--watermark-rate",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Image worlds: share of published synthetic images that carry a generator watermark.",
)
@click.option(
    "--jpeg-quality",
    type=click.IntRange(1, 95),
    default=None,
    help="Image worlds: published files are re-encoded as JPEG at this quality (see --transform-rate).",
)
@click.option(
    "--resize",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Image worlds: published files are downscaled by this factor (see --transform-rate).",
)
@click.option(
    "--transform-rate",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Image worlds: share of published files (real and synthetic) that get --jpeg-quality/--resize.",
)
@click.option(
    "--bank-rate",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Image worlds: share of each generation's synthetic output in the curator's near-duplicate bank.",
)
@click.option(
    "--probe-embedder",
    default="ViT-B-32/openai",
    show_default=True,
    help="Image worlds: embedder of the curator's probe and bank (an `audit scan --embedder` spec).",
)
@click.option(
    "--probe",
    "probe_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Image worlds: use this probe (or calibration) folder instead of training one on generation 0.",
)
@click.option(
    "--probe-size",
    type=click.IntRange(10),
    default=500,
    show_default=True,
    help="Image worlds: known real and generation-0 images each that the curator calibrates its probe on.",
)
@click.option(
    "--from-scan",
    default=None,
    type=click.Path(),
    help="A scan's summary.json (or out folder): run at its estimated contamination and interval ends, "
    "with its calibrated operating points.",
)
@click.option(
    "--test-size",
    type=click.IntRange(2),
    default=None,
    help="Real test items per run for the metrics [default: --samples-per-gen].",
)
@click.option(
    "--filter",
    "filter_",
    type=click.Choice(FILTERS),
    default="none",
    show_default=True,
    help="Remove (detected) synthetic items from each pool before training.",
)
@click.option(
    "--filter-tpr",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of synthetic items the named detector removes.",
)
@click.option(
    "--filter-fpr", type=click.FloatRange(0, 1), default=None, help="Share of real items the named detector removes."
)
@click.option(
    "--filter-rates",
    type=click.Path(dir_okay=False),
    default=None,
    help="Detector operating points from a calibration/scan JSON ({'detectors': {name: {tpr, fpr}}}).",
)
@click.option("--metrics", default=",".join(METRICS), show_default=True, help="Metric groups to compute.")
@click.option("--k", type=click.IntRange(1), default=5, show_default=True, help="Neighbours for PRDC.")
@click.option(
    "--sweep",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Run every combination of these values (repeatable), e.g. --sweep loop=fresh,accumulate.",
)
@click.option(
    "--no-baseline",
    is_flag=True,
    help="Leave out the all-real control and the no-mitigation baselines (and so the verdict).",
)
@click.option(
    "--out",
    default="simulate-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for metrics.csv/json, curves.png, summary.json, report.html and checkpoints.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out (same options).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="What to print on stdout.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def simulate(
    ctx,
    model,
    loop,
    contamination,
    samples_per_gen,
    generations,
    repeats,
    seed,
    bias,
    unbiased,
    dim,
    components,
    data,
    dataset,
    guidance,
    diffusion_preset,
    train_steps,
    train_epochs,
    sample_steps,
    device,
    reweight,
    watermark_rate,
    jpeg_quality,
    resize,
    transform_rate,
    bank_rate,
    probe_embedder,
    probe_dir,
    probe_size,
    from_scan,
    test_size,
    filter_,
    filter_tpr,
    filter_fpr,
    filter_rates,
    metrics,
    k,
    sweep,
    no_baseline,
    out,
    resume,
    fmt,
    quiet,
):
    """Simulate self-consuming training: each generation trains on a pool of real and earlier
    synthetic data, and its samples are measured against real test data.

    With no loop options it compares the worst case (fully-synthetic) with fresh data,
    filters and accumulation. Every run adds the all-real control and the no-mitigation
    baseline (unless --no-baseline) and ends with a verdict.
    """
    from loops.config import ConfigError, SimConfig, parse_sweep
    from loops.mitigate.filters import load_rates
    from loops.models.base import NotEnoughData
    from loops.outputs.checkpoint import CheckpointMismatch
    from loops.simulate import simulate as run_simulation

    given = {
        name
        for name in LOOP_OPTIONS
        if ctx.get_parameter_source("filter_" if name == "filter" else name) != ParameterSource.DEFAULT
    }
    try:
        rates = load_rates(filter_rates) if filter_rates else {}
        base = SimConfig(
            model=model,
            loop=loop,
            contamination=contamination,
            samples_per_gen=samples_per_gen,
            generations=generations,
            repeats=repeats,
            seed=seed,
            bias=bias,
            unbiased=unbiased,
            dim=dim,
            components=components,
            data=data,
            test_size=test_size,
            filter=filter_,
            filter_tpr=filter_tpr,
            filter_fpr=filter_fpr,
            filter_rates=tuple(sorted((n, t, f) for n, (t, f) in rates.items())),
            metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
            k=k,
            dataset=dataset,
            guidance=guidance,
            diffusion_preset=diffusion_preset,
            train_steps=train_steps,
            train_epochs=train_epochs,
            sample_steps=sample_steps,
            device=device,
            reweight=reweight,
            watermark_rate=watermark_rate,
            jpeg_quality=jpeg_quality,
            resize=resize,
            transform_rate=transform_rate,
            bank_rate=bank_rate,
            probe_embedder=probe_embedder,
            probe=probe_dir,
            probe_size=probe_size,
        )
        with _progress_bar(quiet) as progress:
            result = run_simulation(
                base,
                sweep=parse_sweep(sweep),
                preset=not given,
                out=out,
                resume=resume,
                progress=progress,
                from_scan=from_scan,
                baseline=not no_baseline,
            )
    except (ConfigError, CheckpointMismatch, NotEnoughData) as e:
        raise click.UsageError(str(e)) from None
    except OSError as e:
        raise click.UsageError(f"cannot write --out {out}: {e}") from None
    except KeyboardInterrupt:
        stderr.print(f"interrupted; finished generations are checkpointed in {out}. Continue with --resume.")
        sys.exit(130)

    for note in result.summary["notes"]:
        stderr.print(f"[yellow]note:[/] {note}", highlight=False)
    if fmt == "json":
        click.echo(json.dumps(result.summary, indent=2))
    else:
        stdout = Console()
        if not stdout.is_terminal:
            stdout = Console(width=PIPE_WIDTH)
        for line in result.summary["explanation"]:
            stdout.print(line, highlight=False, soft_wrap=True)
        stdout.print(summary_table(result.summary))
        stdout.print(f"Verdict: {result.summary['verdict']}", highlight=False, soft_wrap=True)
        stderr.print(f"outputs in {out}/ (metrics.csv, metrics.json, summary.json, curves.png, report.html)")


def summary_table(summary: dict) -> Table:
    """Means over seeds at a few generations per configuration (spreads are in the files), with
    each column's direction in its name and a legend below."""
    curves = summary["curves"]
    metrics = [m for m in COLUMNS if any(m in entry for entry in curves.values())]
    runs = sorted(set(summary["runs_per_config"].values()))
    table = Table(
        title=f"self-consuming loop: means over {'/'.join(map(str, runs))} seeds",
        title_justify="left",
        caption="\n".join(summary.get("legend", [])),
        caption_justify="left",
    )
    for column in ["configuration", "gen", KEPT_COLUMN[0], *(COLUMNS[m][0] for m in metrics)]:
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for name, entry in curves.items():
        generations = entry["generation"]
        last = generations[-1]
        shown = sorted({g for g in (0, 1, last // 4, last // 2, 3 * last // 4, last) if g in generations})
        for i, g in enumerate(shown):
            at = generations.index(g)
            kept = f"{_mean(entry, 'kept_real', at, '.0f')}/{_mean(entry, 'kept_synthetic', at, '.0f')}"
            table.add_row(
                name if i == 0 else "",
                str(g),
                kept,
                *[_mean(entry, m, at, ".3g") for m in metrics],
                end_section=g == last,
            )
    return table


def _mean(entry: dict, metric: str, at: int, spec: str) -> str:
    if metric not in entry or entry[metric]["mean"][at] is None:
        return "-"
    return format(entry[metric]["mean"][at], spec)


@contextmanager
def _progress_bar(quiet: bool):
    if quiet or not stderr.is_terminal:
        yield None
        return
    columns = (TextColumn("simulating generations"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr) as progress:
        task = progress.add_task("simulate", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
