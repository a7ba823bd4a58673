"""Simulation outputs: the summary (per-generation means and spreads over seeds), metrics.csv,
metrics.json, summary.json, curves.png and report.html in the output folder (plus, for image
worlds, samples/config-NNN/gNNN.png sample grids, written as each generation finishes)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically
from audit.report.strict_json import strict_json
from loops.baselines import role
from loops.outputs.explain import COLUMNS, explanation, legend
from loops.outputs.verdict import verdict

ID_COLUMNS = ("config", "model", "loop", "contamination", "filter", "bias", "samples_per_gen", "seed", "generation")
COUNT_COLUMNS = ("pool_real", "pool_synthetic", "kept_real", "kept_synthetic")
FILES = ("metrics.csv", "metrics.json", "summary.json", "headline.png", "curves.png", "report.html")
TIMING_PREFIX = "seconds_"  # wall-clock columns: measurements of the machine, not of the loop


def without_timings(rows: list[dict]) -> list[dict]:
    """The rows without their wall-clock columns: what must match between two runs of one seed."""
    return [{k: v for k, v in row.items() if not k.startswith(TIMING_PREFIX)} for row in rows]


def metric_names(rows: list[dict]) -> list[str]:
    """Columns that vary per run: the metrics, then the kept counts (identifiers and pool sizes left out)."""
    names = []
    for row in rows:
        names += [k for k in row if k not in ID_COLUMNS and k not in ("pool_real", "pool_synthetic") and k not in names]
    counts = [k for k in names if k.startswith("kept_")]
    return [k for k in names if k not in counts] + counts


def curves(rows: list[dict], names: list[str]) -> dict:
    """{config: {"generation": [...], metric: {"mean": [...], "sd": [...]}}} over seeds."""
    metrics = metric_names(rows)
    grouped: dict[str, dict[int, list[dict]]] = {name: {} for name in names}
    for row in rows:
        grouped[row["config"]].setdefault(row["generation"], []).append(row)
    out = {}
    for name, by_generation in grouped.items():
        generations = sorted(by_generation)
        entry = {"generation": generations}
        for metric in metrics:
            values = [[r[metric] for r in by_generation[g] if r.get(metric) is not None] for g in generations]
            if any(values):
                entry[metric] = {"mean": [_mean(v) for v in values], "sd": [_sd(v) for v in values]}
        out[name] = entry
    return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _sd(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def build_summary(configs, names: list[str], rows: list[dict], notes: list[str], elapsed: float) -> dict:
    """Everything summary.json holds; `verdict` and `explanation` say in words what ran and what it showed."""
    table = curves(rows, names)
    config_dicts = [{"label": name, **config.to_dict()} for config, name in zip(configs, names)]
    summary = {
        "verdict": None,
        "explanation": explanation(configs),
        "configs": config_dicts,
        "roles": {c["label"]: role(c) for c in config_dicts},
        "runs_per_config": {name: config.repeats for config, name in zip(configs, names)},
        "final": {
            name: {
                metric: {"mean": v["mean"][-1], "sd": v["sd"][-1]}
                for metric, v in table[name].items()
                if metric != "generation"
            }
            | {"generation": table[name]["generation"][-1]}
            for name in names
        },
        "curves": table,
        "notes": notes,
        "elapsed_s": round(elapsed, 3),
        "files": list(FILES),
    }
    summary["legend"] = legend([m for m in COLUMNS if any(m in entry for entry in table.values())])
    summary["verdict"] = verdict(summary)
    return summary


def write_outputs(result) -> None:
    out = Path(result.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "metrics.csv", lambda p: _write_csv(p, result.rows))
    write_atomically(out / "metrics.json", lambda p: p.write_text(strict_json(result.rows, indent=1), encoding="utf-8"))
    write_atomically(
        out / "summary.json", lambda p: p.write_text(strict_json(result.summary, indent=1), encoding="utf-8")
    )
    from loops.outputs.curves import headline_metrics, plot_curves, plot_headline

    curves_table = result.summary["curves"]
    write_atomically(out / "headline.png", lambda p: plot_headline(curves_table, p))
    write_atomically(
        out / "curves.png", lambda p: plot_curves(curves_table, p, skip=tuple(headline_metrics(curves_table)))
    )
    from loops.outputs.html import write_html_report

    grids = sample_grids(out, result.summary["configs"])
    write_atomically(
        out / "report.html",
        lambda p: write_html_report(result.summary, out / "curves.png", p, grids, headline_png=out / "headline.png"),
    )


def sample_grids(out: Path, configs: list[dict]) -> dict[str, list[tuple[int, bytes]]]:
    """{config label: [(generation, grid PNG)]} from out/samples/config-NNN/gNNN.png (image worlds)."""
    grids = {}
    for i, config in enumerate(configs):
        files = sorted((out / "samples" / f"config-{i:03d}").glob("g*.png"))
        if files:
            grids[config["label"]] = [(int(f.stem[1:]), f.read_bytes()) for f in files]
    return grids


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(ID_COLUMNS) + list(COUNT_COLUMNS)
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
