"""`audit advise`: thin command line over `loops.advise`; the table and conclusion on stdout (or
--format json: advice.json), messages on stderr. Exit codes: 0 ok, 2 usage or input error."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import click

from audit.report.console import SafeConsole as Console  # prints the data's control characters escaped
from loops.advise.defaults import DEFAULTS
from loops.advise.policies import COST_ITEMS, Costs
from loops.advise.quality import METRIC_GROUP
from loops.config import MODELS, SCENARIO_BIAS
from loops.mitigate.filters import DEFAULT_RATES

stderr = Console(stderr=True)


def cost_options(command):
    """--cost-fresh, --cost-discard-real, ...: one option per price of `Costs`, its default from there."""
    for name, item, unit in reversed(COST_ITEMS):
        command = click.option(
            f"--cost-{name.replace('_', '-')}",
            f"cost_{name}",
            type=click.FloatRange(0),
            default=getattr(Costs(), name),
            show_default=True,
            help=f"Price of {item}, {unit}, in fresh real items.",
        )(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--contamination",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of synthetic items in the scraped pool (or give --from-scan).",
)
@click.option(
    "--from-scan",
    default=None,
    type=click.Path(),
    help="A scan's summary.json (or out folder): search at its estimate and both interval ends, with "
    "its calibrated operating points.",
)
@click.option(
    "--filter-rates",
    type=click.Path(dir_okay=False),
    default=None,
    help="Detector operating points from a calibration JSON (overrides the scan's).",
)
@click.option(
    "--detectors",
    default=None,
    help="Detectors available as filters (each alone and their union) [default: the detectors the scan "
    "ran with --from-scan, else watermark,probe,neardup].",
)
@click.option(
    "--metric",
    type=click.Choice(list(METRIC_GROUP)),
    default=DEFAULTS["metric"],
    show_default=True,
    help="Quality metric the tolerance is on, relative to the all-real control.",
)
@click.option(
    "--max-quality-loss",
    type=click.FloatRange(0),
    default=DEFAULTS["max_quality_loss"],
    show_default=True,
    help="Tolerance: at most this relative loss (FID/W2 above, recall/coverage/precision below the control).",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(0),
    default=None,
    help="Budget per generation, in fresh real items; without an affordable policy the advice gives the "
    "policy for each end of the interval and up to which contamination it stays safe.",
)
@cost_options
@click.option(
    "--fresh-step",
    type=click.FloatRange(0.01, 0.5),
    default=DEFAULTS["fresh_step"],
    show_default=True,
    help="Resolution of the fresh-share search (after the coarse grid 25/50/75/100 %).",
)
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=None,
    help="Backend [default: diffusion with --dataset, else gaussian].",
)
@click.option("--data", default=None, help="Toy backends' real data (as for audit simulate).")
@click.option("--dataset", default=None, help="Labelled images for the diffusion backend (as for audit simulate).")
@click.option("--generations", type=click.IntRange(1), default=None, help="Generations [default: per backend].")
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=None,
    help="Search seeds per policy [default: 200 on the Gaussian backend, else per backend].",
)
@click.option(
    "--heldout-repeats",
    type=click.IntRange(1),
    default=None,
    help="Held-out seeds the candidates are verified on [default: 200 on the Gaussian backend, else --repeats].",
)
@click.option("--samples-per-gen", type=click.IntRange(2), default=None, help="Training pool size per generation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Run r uses seed + r.")
@click.option(
    "--bias",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help=f"Sampling bias lambda [default: {SCENARIO_BIAS:g} for the toy backends, 1 for diffusion].",
)
@click.option("--diffusion-preset", type=click.Choice(["cpu", "gpu"]), default=None, help="Diffusion preset.")
@click.option("--train-steps", type=click.IntRange(1), default=None, help="Diffusion: training steps per generation.")
@click.option("--sample-steps", type=click.IntRange(1), default=None, help="Diffusion: DDIM sampling steps.")
@click.option(
    "--probe-embedder",
    default="ViT-B-32/openai",
    show_default=True,
    help="Image worlds: the curator's probe and bank embedder.",
)
@click.option(
    "--out",
    default="advise-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for advice.json and report.html.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="What to print on stdout.",
)
@click.option("--quiet", is_flag=True, help="No progress messages.")
def advise(
    contamination,
    from_scan,
    filter_rates,
    detectors,
    metric,
    max_quality_loss,
    max_cost,
    fresh_step,
    model,
    data,
    dataset,
    generations,
    repeats,
    heldout_repeats,
    samples_per_gen,
    seed,
    bias,
    diffusion_preset,
    train_steps,
    sample_steps,
    probe_embedder,
    out,
    fmt,
    quiet,
    **prices,
):
    """Recommend the least costly data policy that keeps quality: no mitigation, a detector
    filter (each, or their union), a share of fresh real data per generation, accumulating, or
    tail reweighting, searched with repeats at the contamination (and the scan's interval ends)."""
    from loops.advise.advisor import advise as run_advice
    from loops.advise.report import advice_table
    from loops.config import ConfigError, scenario
    from loops.mitigate.filters import load_rates
    from loops.models.base import NotEnoughData

    names = None if detectors is None else tuple(d.strip() for d in detectors.split(",") if d.strip())
    try:
        unknown = [d for d in names or () if d not in DEFAULT_RATES]
        if unknown:
            raise ConfigError(f"--detectors: unknown {', '.join(unknown)}; known: {', '.join(DEFAULT_RATES)}")
        config = replace(
            scenario(),
            model=model,
            data=data,
            dataset=dataset,
            generations=generations,
            repeats=repeats,
            samples_per_gen=samples_per_gen,
            seed=seed,
            bias=bias,
            diffusion_preset=diffusion_preset,
            train_steps=train_steps,
            sample_steps=sample_steps,
            probe_embedder=probe_embedder,
        )
        rates = load_rates(filter_rates) if filter_rates else None
        progress = (
            None if quiet or not stderr.is_terminal else (lambda c, n: stderr.print(f"{n} simulations", end="\r"))
        )
        started = time.perf_counter()
        result = run_advice(
            contamination,
            from_scan=from_scan,
            config=config,
            metric=metric,
            max_quality_loss=max_quality_loss,
            detectors=names,
            filter_rates=rates,
            costs=Costs(**{k[len("cost_") :]: v for k, v in prices.items()}),
            max_cost=max_cost,
            heldout_repeats=heldout_repeats,
            fresh_step=fresh_step,
            out=out,
            progress=progress,
        )
    except (ConfigError, NotEnoughData) as e:
        raise click.UsageError(str(e)) from None
    except OSError as e:
        raise click.UsageError(f"cannot write --out {out}: {e}") from None
    for note in result.notes:
        stderr.print(f"[yellow]note:[/] {note}", highlight=False)
    if fmt == "json":
        click.echo(json.dumps(result.record(), indent=2, allow_nan=False))
        return
    stdout = Console() if Console().is_terminal else Console(width=140)
    stdout.print(advice_table(result))
    stdout.print(f"Advice: {result.conclusion()}", highlight=False, soft_wrap=True)
    stderr.print(
        f"took {time.perf_counter() - started:.1f} s (report included); outputs in {out}/ (advice.json, report.html)"
    )
