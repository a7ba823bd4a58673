"""The self-consuming Gaussian loop against closed-form theory, the loop types against each other,
PRDC against its expected values and the reference package, and the speed of the vectorised loop.

    python benchmarks/loop_theory.py [--runs 10000]

Theory (MAD section 3.1; real data N(0, 1), n samples per generation, fully synthetic). The model
of generation g is the (g+1)-th fit, so t = g + 1; var is the variance the model samples from:
  MLE refit:       E[var_t] = q^t, q = (n-1)/n;   E[(mu_t - mu_0)^2] = 1 - q^t  (~ t/n while t << n)
  unbiased refit:  E[var_t] = 1;  median var_t ~ exp(-t/(n-1));  E[(mu_t - mu_0)^2] = t/n
  sampling bias:   E[var_t] = lambda^t (unbiased refit), (lambda q)^t (MLE)
Each scenario has its own seeds. `se` is the standard error of the measured/theory ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import time

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loops import SimConfig, simulate
from loops.metrics.measures import prdc

N = 100
TIMES = (1, 5, 10, 25, 50)
SEEDS = 4
console = Console(width=140)


def fully_synthetic(runs: int, seed: int, **options) -> dict[int, dict[str, np.ndarray]]:
    config = SimConfig(
        loop="fully-synthetic",
        repeats=runs,
        generations=max(TIMES) - 1,
        samples_per_gen=N,
        dim=1,
        metrics=("moments",),
        seed=seed,
        **options,
    )
    rows = simulate(config).rows
    out = {}
    for t in TIMES:
        chosen = [r for r in rows if r["generation"] == t - 1]
        out[t] = {
            "var": np.array([r["var_ratio"] for r in chosen]),
            "drift": np.array([r["mean_shift"] for r in chosen]) ** 2,
        }
    return out


def theory_table(runs: int) -> Table:
    q, lam = (N - 1) / N, 0.98
    table = Table(
        title=f"Gaussian loop vs theory: n={N}, {runs} runs per scenario, fully synthetic", title_justify="left"
    )
    for column in ("scenario", "quantity", "t", "theory", "measured", "ratio", "se"):
        table.add_column(column, justify="left" if column in ("scenario", "quantity") else "right")

    def add(scenario, quantity, values, theory, statistic="mean"):
        for t in TIMES:
            x = values[t]
            if statistic == "mean":
                measured, se = x.mean(), x.std(ddof=1) / math.sqrt(len(x))
            else:  # median; its standard error from the density at the median (log-normal approximation)
                measured = float(np.median(x))
                se = 1.2533 * np.std(np.log(x), ddof=1) * measured / math.sqrt(len(x))
            expected = theory(t)
            table.add_row(
                scenario,
                escape(quantity),
                str(t),
                f"{expected:.4f}",
                f"{measured:.4f}",
                f"{measured / expected:.3f}",
                f"{se / expected:.3f}",
            )
        table.add_section()

    mle = fully_synthetic(runs, seed=0)
    add("MLE", "E[var] = q^t", {t: v["var"] for t, v in mle.items()}, lambda t: q**t)
    add("MLE", "E[drift] = 1-q^t", {t: v["drift"] for t, v in mle.items()}, lambda t: 1 - q**t)
    add("MLE", "E[drift] ~ t/n", {t: v["drift"] for t, v in mle.items()}, lambda t: t / N)
    unbiased = fully_synthetic(runs, seed=10**6, unbiased=True)
    add("unbiased", "E[var] = 1", {t: v["var"] for t, v in unbiased.items()}, lambda t: 1.0)
    add(
        "unbiased",
        "median var ~ e^(-t/(n-1))",
        {t: v["var"] for t, v in unbiased.items()},
        lambda t: math.exp(-t / (N - 1)),
        statistic="median",
    )
    add("unbiased", "E[drift] = t/n", {t: v["drift"] for t, v in unbiased.items()}, lambda t: t / N)
    biased = fully_synthetic(runs, seed=2 * 10**6, unbiased=True, bias=lam)
    add(f"unbiased, lambda={lam}", "E[var] = lambda^t", {t: v["var"] for t, v in biased.items()}, lambda t: lam**t)
    biased_mle = fully_synthetic(runs, seed=3 * 10**6, bias=lam)
    add(
        f"MLE, lambda={lam}",
        "E[var] = (lambda q)^t",
        {t: v["var"] for t, v in biased_mle.items()},
        lambda t: (lam * q) ** t,
    )
    return table


def loops_table(runs: int = 500, generations: int = 100) -> Table:
    base = SimConfig(repeats=runs, generations=generations, samples_per_gen=N, dim=2, metrics=("moments",), seed=7)
    sweep = [("loop", ["fully-synthetic", "augment", "fresh", "accumulate"]), ("contamination", [0.5, 0.9])]
    result = simulate([base], sweep=sweep, preset=False)
    shown = (0, 10, 25, 50, generations)
    table = Table(title=f"W2 to the true N(0, I_2): mean ± sd over {runs} runs, n={N}", title_justify="left")
    table.add_column("loop")
    for g in shown:
        table.add_column(f"g={g}", justify="right")
    for name, entry in result.summary["curves"].items():
        w2 = entry["w2"]
        table.add_row(name, *[f"{w2['mean'][g]:.3f} ± {w2['sd'][g]:.3f}" for g in shown])
    return table


def prdc_table() -> Table:
    import prdc as reference

    table = Table(
        title="PRDC, k=5: two samples of one distribution (N(0, I_d)), and the reference package", title_justify="left"
    )
    for column in ("check", "precision", "recall", "density", "coverage", "s / call"):
        table.add_column(column, justify="left" if column == "check" else "right")
    n, k = 10_000, 5
    expected = 1 - math.prod((n - i) / (2 * n - i) for i in range(1, k + 1))
    table.add_row("expected (Naeem et al.), N = M = 10k", "-", "-", "1", f"{expected:.4f}", "")
    for d in (8, 64):
        started, results = time.perf_counter(), []
        for seed in range(SEEDS):
            rng = np.random.default_rng([d, seed])
            results.append(prdc(rng.standard_normal((n, d)), rng.standard_normal((n, d)), k))
        seconds = (time.perf_counter() - started) / SEEDS
        table.add_row(
            f"10k vs 10k, d={d} ({SEEDS} seeds: mean ± sd)",
            *[
                f"{np.mean([r[m] for r in results]):.4f} ± {np.std([r[m] for r in results], ddof=1):.4f}"
                for m in results[0]
            ],
            f"{seconds:.1f}",
        )
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((3000, 16)), 0.5 + 0.8 * rng.standard_normal((3000, 16))
    ours = prdc(real, fake, k)
    with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its input sizes
        theirs = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    table.add_row("loops.metrics.measures: 3k vs 3k shifted, d=16", *[f"{ours[m]:.6f}" for m in ours], "")
    table.add_row("prdc package, same features", *[f"{float(theirs[m]):.6f}" for m in ours], "")
    table.add_row("max |difference|", f"{max(abs(ours[m] - float(theirs[m])) for m in ours):.1e}", "", "", "", "")
    return table


def speed_table() -> Table:
    table = Table(title="speed: 500 Gaussian runs x 100 generations, n=100, d=2", title_justify="left")
    for column in ("metrics", "seconds", "run-generations / s"):
        table.add_column(column, justify="left" if column == "metrics" else "right")
    for metrics in (("moments",), ("moments", "fid", "prdc")):
        config = SimConfig(loop="fully-synthetic", repeats=500, generations=100, samples_per_gen=N, metrics=metrics)
        started = time.perf_counter()
        simulate(config)
        seconds = time.perf_counter() - started
        table.add_row(" + ".join(metrics), f"{seconds:.2f}", f"{500 * 101 / seconds:,.0f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs per theory scenario (at least 500)")
    args = parser.parse_args()
    started = time.perf_counter()
    for build in (lambda: theory_table(args.runs), loops_table, prdc_table, speed_table):
        console.print(build())
        console.print()
    console.print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
