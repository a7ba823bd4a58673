"""curves.png: every metric over generations, one line per configuration (mean over seeds) with a
band of one standard deviation over seeds."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(curves: dict, path) -> None:
    metrics = []
    for entry in curves.values():
        metrics += [m for m in entry if m != "generation" and m not in metrics]
    columns = min(3, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.4 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for name, entry in curves.items():
            if metric not in entry:
                continue
            g = np.array(entry["generation"])
            mean = np.array(entry[metric]["mean"], dtype=float)
            sd = np.array(entry[metric]["sd"], dtype=float)
            (line,) = ax.plot(g, mean, label=name, linewidth=1.5)
            if np.isfinite(sd).any():
                ax.fill_between(g, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(metric)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3), frameon=False)
    fig.tight_layout(rect=(0, 0.1 / rows * math.ceil(len(names) / 3), 1, 1))
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
