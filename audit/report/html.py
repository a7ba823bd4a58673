"""report.html: the scan report as one self-contained page (inline CSS/JS, images as data URIs):
the estimate, caveats, counts, score histograms, and sortable, filterable tables of the flagged
images (with thumbnails) and the errors. All text from the scan is escaped."""

from __future__ import annotations

import io
from collections import Counter
from html import escape
from pathlib import Path

from audit.atomic import write_atomically
from audit.report.page import cell, data_uri, figure_png, page, table
from audit.report.tally import LISTED_ROWS, Listed
from audit.report.text import (
    DECISION_COLUMNS,
    GROUP_HEADERS,
    baseline_lines,
    caveats,
    decision_counts,
    estimate_details,
    flag_evidence,
    group_cells,
    group_title,
    groups_left_out,
    headline,
    percent,
)

MAX_TABLE_ROWS = LISTED_ROWS
MAX_THUMBNAILS = 200
THUMBNAIL_PX = 128
HISTOGRAMS = {
    "probe_score": "probe scores (probability synthetic)",
    "neardup_score": "near-duplicate bank scores (similarity of a match; images without one have no score)",
}


def write_html_report(summary: dict, listed: Listed, path) -> None:
    text = html_report(summary, listed)
    write_atomically(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def html_report(summary: dict, listed: Listed) -> str:
    """report.html from the summary and what the tally listed (first flagged and error rows, histograms)."""
    e = summary["estimate"]
    body = [
        "<h1>Synthetic-image audit</h1>",
        f"<p>Source: <code>{escape(str(summary['source']))}</code></p>",
        f'<p class="headline" id="headline">{escape(headline(summary))}</p>',
        f"<p>Method: {escape(e['method'])}, {escape(e['interval_method'])} interval. {escape(e['note'])}</p>",
        *[f'<div class="warning">WARNING: {escape(w)}</div>' for w in e["warnings"]],
        *[f'<div class="note">{escape(line)}</div>' for line in caveats(summary)],
        _list(estimate_details(e)),
        _list(baseline_lines(summary)),
        _estimate_table(summary),
        "<h2>Detectors</h2>",
        _detector_table(summary["per_detector"]),
        "<h2>Generators (model family)</h2>",
        _count_table("generator", summary["per_generator"]),
        "<h2>Tools</h2>",
        _count_table("tool", summary.get("per_tool", {})),
        *_group_section(summary.get("groups")),
        *_histograms(listed.histograms),
        *_flagged_section(summary, listed.flagged),
        *_error_section(summary["counts"]["error"], listed.errors),
    ]
    return page("Synthetic-image audit", body)


def _list(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>" if lines else ""


def _estimate_table(summary: dict) -> str:
    c, e = summary["counts"], summary["estimate"]
    low, high = e["interval"]
    hard_low, hard_high = e.get("lower_bound_interval") or (None, None)
    corrected = e["operating_points"] is not None
    rows = [
        ("images scanned", str(c["ok"])),
        ("errors", str(c["error"])),
        ("flagged by any detector", f"{c['flagged']} ({percent(e['flagged_fraction'])})"),
        ("estimated synthetic fraction" if corrected else "flagged fraction (uncorrected)", percent(e["point"])),
        (f"{int(100 * e['confidence'])}% interval", f"{percent(low)} - {percent(high)}"),
        (
            "hard lower bound (hard evidence)",
            f"{c['hard_evidence']} ({percent(e['lower_bound'])}; interval {percent(hard_low)} - {percent(hard_high)})",
        ),
    ]
    return table(["measure", "value"], [[cell(k), cell(v)] for k, v in rows], table_id="estimate")


def _detector_table(per_detector: dict) -> str:
    rows = [
        [cell(name), *(cell(n, numeric=True) for n in decision_counts(counts))] for name, counts in per_detector.items()
    ]
    return table(["detector", *(header for _, header in DECISION_COLUMNS)], rows)


def _count_table(header: str, counts: dict) -> str:
    if not counts:
        return f"<p>No {header} identified.</p>"
    return table([header, "images"], [[cell(g), cell(n, numeric=True)] for g, n in counts.items()])


def _group_section(groups: dict | None) -> list[str]:
    if not groups:
        return []
    body = [[cell(g["group"]), *(cell(v, numeric=True) for v in group_cells(g))] for g in groups["groups"]]
    note = groups_left_out(groups, len(body))
    return [
        f"<h2>{escape(group_title(groups))}</h2>",
        *([f'<p class="note">{escape(note)}</p>'] if note else []),
        table([groups["by"], *GROUP_HEADERS], body, sortable=True, table_id="groups"),
    ]


def _histograms(histograms: dict) -> list[str]:
    parts = []
    for column, title in HISTOGRAMS.items():
        if column in histograms:
            parts += [f"<h2>{escape(title)}</h2>", histogram(histograms[column], title)]
    return parts


def histogram(counts, title: str) -> str:
    """A bar chart of `counts` in equal bins over [0, 1]."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.6))
    ax = fig.add_subplot()
    ax.stairs(counts, np.linspace(0.0, 1.0, len(counts) + 1), fill=True, color="#4a78b0")
    ax.set_xlabel(title)
    ax.set_ylabel("images")
    return figure_png(fig)


def _flagged_section(summary: dict, flagged_rows: list[dict]) -> list[str]:
    flagged = summary["counts"]["flagged"]
    shown = flagged_rows[:MAX_TABLE_ROWS]
    thumbs = set(evenly_spaced(len(shown), MAX_THUMBNAILS))
    picked = [shown[i] for i in sorted(thumbs)]
    containers = {r["uri"]: r["container"] for r in picked if "container" in r}
    images = thumbnails([r["uri"] for r in picked], (summary.get("config") or {}).get("column"), containers)
    body = [
        [
            _thumbnail_cell(images.get(r["uri"])) if i in thumbs else cell(""),
            cell(r["id"]),
            cell(r["generator"] or ""),
            cell(r.get("tool") or ""),
            cell("yes" if r["hard_evidence"] else "no"),
            cell(flag_evidence(r, summary["per_detector"])),
        ]
        for i, r in enumerate(shown)
    ]
    missing = Counter(why for why in images.values() if not why.startswith("data:"))
    notes = [f'<p class="note">No thumbnail for {n} rows: {escape(why)}.</p>' for why, n in missing.most_common()]
    return [
        f"<h2>Flagged images ({flagged})</h2>",
        *_left_out(flagged, len(shown), len(thumbs)),
        *notes,
        table(
            ["thumbnail", "id", "generator", "tool", "hard evidence", "evidence"],
            body,
            sortable=True,
            table_id="flagged",
        ),
    ]


def _error_section(errors: int, error_rows: list[dict]) -> list[str]:
    shown = error_rows[:MAX_TABLE_ROWS]
    body = [[cell(r["id"]), cell(r["error"])] for r in shown]
    return [
        f"<h2>Errors ({errors})</h2>",
        *_left_out(errors, len(shown)),
        table(["id", "reason"], body, sortable=True, table_id="errors"),
    ]


def _left_out(total: int, shown: int, thumbnails: int | None = None) -> list[str]:
    notes = []
    if shown < total:
        notes.append(
            f"{total - shown} of {total} rows left out to keep this page small; all of them are in results.parquet."
        )
    if thumbnails is not None and thumbnails < shown:
        notes.append(f"Thumbnails for {thumbnails} of {shown} rows (an evenly spaced sample).")
    return [f'<p class="note">{escape(n)}</p>' for n in notes]


def evenly_spaced(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when n <= k): a deterministic sample."""
    if n <= k:
        return list(range(n))
    return [i * n // k for i in range(k)]


def _thumbnail_cell(src: str | None) -> str:
    return f'<td><img class="thumb" alt="" src="{src}"></td>' if src and src.startswith("data:") else "<td></td>"


def thumbnails(
    uris: list[str], column: str | None = None, containers: dict[str, str | None] | None = None
) -> dict[str, str]:
    """uri -> a thumbnail's data URI, or the reason there is none: files, shard members and parquet
    rows are read back (each shard or file once, from the container the scan recorded); remote
    items are not."""
    from audit.sources.reread import read_items

    return {
        uri: thumbnail(data) if isinstance(data, bytes) else data
        for uri, data in read_items([u for u in uris if u], column, containers).items()
    }


def thumbnail(data: bytes) -> str:
    """A JPEG data URI of the image in `data`, at most THUMBNAIL_PX a side, or why there is none."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            im.save(buffer, format="JPEG", quality=80)
    except Exception:  # noqa: BLE001 - a thumbnail is optional; the row still shows
        return "the image cannot be decoded again"
    return data_uri(buffer.getvalue(), "image/jpeg")
