"""The figures of a simulation report.

headline.png: the answer first, quality (FID, else W2) and diversity (recall, else coverage or the
variance ratio) per generation for the all-real control, the no-mitigation baseline and each
mitigation, mean over seeds with a band of one standard deviation. curves.png: every other metric
that varies. Each configuration keeps one colour in every panel of both figures, and the legend
sits below the panels, always visible. Panels whose values never change (a filter's rate on a run
without one) are dropped, and so are wall-clock timings (a measure of the machine, not of the loop;
they stay in metrics.csv).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

QUALITY = ("fid", "w2")
DIVERSITY = ("recall", "coverage", "var_ratio")
TITLES = {
    "fid": "quality: FID ↓",
    "w2": "quality: W2 ↓",
    "recall": "diversity: recall ↑",
    "coverage": "diversity: coverage ↑",
    "var_ratio": "diversity: variance ratio ≈1",
}


def colours(names: list[str]) -> dict[str, str]:
    """One colour per configuration, the same in every panel."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def varying_metrics(curves: dict) -> list[str]:
    """Metrics whose means change somewhere (constant panels say nothing)."""
    metrics: list[str] = []
    for entry in curves.values():
        metrics += [m for m in entry if m != "generation" and m not in metrics]
    return [m for m in metrics if not m.startswith("seconds_") and _spread(curves, m) > 1e-12]


def headline_metrics(curves: dict) -> list[str]:
    """The quality and the diversity metric of the headline figure (those measured and varying)."""
    metrics = varying_metrics(curves)
    quality = next((m for m in QUALITY if m in metrics), None)
    diversity = next((m for m in DIVERSITY if m in metrics), None)
    return [m for m in (quality, diversity) if m]


def plot_headline(curves: dict, path) -> None:
    metrics = headline_metrics(curves)
    _plot(curves, metrics or varying_metrics(curves)[:2], path, columns=2, width=6.0)


def plot_curves(curves: dict, path, skip: tuple[str, ...] = ()) -> None:
    _plot(curves, [m for m in varying_metrics(curves) if m not in skip], path, columns=3, width=5.0)


def _plot(curves: dict, metrics: list[str], path, columns: int, width: float) -> None:
    names = list(curves)
    colour = colours(names)
    columns = min(columns, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    legend_rows = math.ceil(len(names) / 2)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, 3.4 * rows + 0.35 * legend_rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for name, entry in curves.items():
            if metric not in entry:
                continue
            g = np.array(entry["generation"])
            mean = np.array(entry[metric]["mean"], dtype=float)
            sd = np.array(entry[metric]["sd"], dtype=float)
            ax.plot(g, mean, label=name, linewidth=1.6, color=colour[name])
            if np.isfinite(sd).any():
                ax.fill_between(g, mean - sd, mean + sd, color=colour[name], alpha=0.18, linewidth=0)
        ax.set_title(TITLES.get(metric, metric))
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colour[n], linewidth=2.5) for n in names]
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 2), frameon=False)
    fig.tight_layout(rect=(0, min(0.45, 0.35 * legend_rows / fig.get_figheight() + 0.02), 1, 1))
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _spread(curves: dict, metric: str) -> float:
    values = [v for entry in curves.values() if metric in entry for v in entry[metric]["mean"] if v is not None]
    return float(np.ptp(values)) if values else 0.0
