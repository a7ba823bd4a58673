"""report.html of a simulation: one self-contained page with the metric curves over generations
(curves.png inline), per-generation sample grids (image worlds), the configurations, the final
generation's metrics (mean ± sd over seeds) and, with --from-scan, the scan's numbers it used."""

from __future__ import annotations

from html import escape
from pathlib import Path

from audit.atomic import write_atomically
from audit.report.page import cell, data_uri, page, table
from loops.outputs.advice_html import advice_section


def write_html_report(
    summary: dict,
    curves_png: Path,
    path,
    grids: dict[str, list[tuple[int, bytes]]] | None = None,
    headline_png: Path | None = None,
) -> None:
    headline = Path(headline_png).read_bytes() if headline_png is not None else None
    text = html_report(summary, Path(curves_png).read_bytes(), grids, headline)
    write_atomically(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def html_report(
    summary: dict,
    curves_png: bytes,
    grids: dict[str, list[tuple[int, bytes]]] | None = None,
    headline_png: bytes | None = None,
) -> str:
    body = [
        "<h1>Self-consuming training simulation</h1>",
        *headline_section(summary, headline_png),
        *advice_section(summary.get("advice")),
        *verdict_section(summary),
        *[f'<div class="note">NOTE: {escape(n)}</div>' for n in summary["notes"]],
        *scan_section(summary.get("from_scan")),
        "<h2>Other metrics over generations</h2>",
        f'<img alt="metric curves" style="max-width:100%" src="{data_uri(curves_png, "image/png")}">',
        *grid_section(grids or {}),
        "<h2>Final generation (mean ± sd over seeds)</h2>",
        final_table(summary["final"]),
        "<h2>Configurations</h2>",
        config_table(summary["configs"], summary["runs_per_config"]),
        f"<p>Elapsed: {summary['elapsed_s']:.1f} s.</p>",
    ]
    return page("Self-consuming training simulation", body)


def headline_section(summary: dict, png: bytes | None) -> list[str]:
    """The answer first: quality and diversity per generation, control, baseline and each mitigation."""
    if png is None:
        return []
    runs = "/".join(map(str, sorted(set(summary["runs_per_config"].values()))))
    return [
        '<h2 id="headline">Quality and diversity per generation</h2>',
        f'<img alt="quality and diversity per generation" style="max-width:100%" src="{data_uri(png, "image/png")}">',
        f"<p>Mean over {runs} seeds, band: ± 1 sd over seeds; one colour per configuration in every figure.</p>",
    ]


def verdict_section(summary: dict) -> list[str]:
    """The verdict, what ran, and what the columns mean (summary.json's `verdict`, `explanation`, `legend`)."""
    if summary.get("verdict") is None:
        return []
    items = "".join(f"<li>{escape(line)}</li>" for line in summary.get("explanation", []))
    legend = "".join(f"<li>{escape(line)}</li>" for line in summary.get("legend", []))
    return [
        f'<p class="verdict"><strong>Verdict.</strong> {escape(summary["verdict"])}</p>',
        f"<h2>What ran</h2><ul>{items}</ul>",
        f"<details><summary>Legend</summary><ul>{legend}</ul></details>",
    ]


def final_table(final: dict) -> str:
    metrics = []
    for entry in final.values():
        metrics += [m for m in entry if m != "generation" and m not in metrics]
    rows = [
        [
            cell(name),
            cell(entry["generation"], numeric=True),
            *(cell(_mean_sd(entry.get(m)), numeric=True) for m in metrics),
        ]
        for name, entry in final.items()
    ]
    return table(["config", "generation", *metrics], rows, sortable=True, table_id="final")


def _mean_sd(value: dict | None) -> str:
    if not value or value["mean"] is None:
        return ""
    return f"{value['mean']:.4g}" + ("" if value["sd"] is None else f" ± {value['sd']:.2g}")


def config_table(configs: list[dict], runs: dict) -> str:
    fields = []
    for config in configs:
        fields += [k for k in config if k != "label" and k not in fields]
    rows = [
        [cell(c["label"]), cell(runs.get(c["label"]), numeric=True), *(cell(c.get(k)) for k in fields)] for c in configs
    ]
    return table(["config", "runs", *fields], rows, sortable=True, table_id="configs")


def scan_section(record: dict | None) -> list[str]:
    """Which numbers came from the scan (--from-scan), with a link to its report."""
    if not record:
        return []
    link = Path(record["report"]).resolve().as_uri() if record.get("report") else None
    rows = [[cell(role), cell(value, numeric=True)] for value, role in record["contamination"].items()]
    rows += [
        [cell(f"{name} TPR / FPR"), cell(f"{r['tpr']:.3g} / {r['fpr']:.3g}", numeric=True)]
        for name, r in record["operating_points"].items()
    ]
    return [
        "<h2>From the scan</h2>",
        f"<p>Scan summary: <code>{escape(record['summary'])}</code>"
        + (f' (<a href="{escape(link)}">its report</a>)' if link else "")
        + "</p>",
        table(["number", "value"], rows, table_id="from-scan"),
    ]


def grid_section(grids: dict[str, list[tuple[int, bytes]]]) -> list[str]:
    """One row of sample grids per configuration, one grid per generation."""
    if not grids:
        return []
    out = ["<h2>Samples per generation</h2>"]
    for name, images in grids.items():
        figures = "".join(
            f'<figure style="display:inline-block;margin:4px"><img alt="generation {g}" width="128" '
            f'src="{data_uri(png, "image/png")}"><figcaption>g{g}</figcaption></figure>'
            for g, png in images
        )
        out += [f"<h3>{escape(name)}</h3>", f"<div>{figures}</div>"]
    return out
