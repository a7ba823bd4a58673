"""report.md and its head (`markdown_summary`), which the GitHub step summary reuses."""

from __future__ import annotations

from html import escape

from audit.report.safe_text import safe_text
from audit.report.tally import Listed
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
)

MAX_LISTED_ERRORS = 50
MAX_LISTED_FLAGGED = 1000
MAX_GROUP_ROWS = 50


def markdown_summary(summary: dict) -> list[str]:
    """report.md without its per-image tables: the estimate, warnings, caveats and the
    per-detector and per-generator counts. Also the head of the GitHub step summary."""
    e = summary["estimate"]
    lines = [
        "# Synthetic-image audit",
        "",
        f"Source: {md_cell(summary['source'])}",
        "",
        f"**{headline(summary)}**",
        "",
        f"Method: {e['method']}, {e['interval_method']} interval. {e['note']}",
        "",
        *[f"> **WARNING:** {line}\n" for line in e["warnings"]],
        *[f"- {line}" for line in estimate_details(e)],
        "",
        *[f"> {line}\n" for line in caveats(summary)],
        *[f"- {md_cell(line)}" for line in baseline_lines(summary)],
        "",
        "## Detectors",
        "",
        "| detector | " + " | ".join(header for _, header in DECISION_COLUMNS) + " |",
        "|---" * (len(DECISION_COLUMNS) + 1) + "|",
    ]
    for name, counts in summary["per_detector"].items():
        lines.append(f"| {name} | " + " | ".join(map(str, decision_counts(counts))) + " |")
    lines += _count_table("Generators (model family)", "generator", summary["per_generator"])
    return lines + _count_table("Tools", "tool", summary.get("per_tool", {})) + _group_table(summary.get("groups"))


def _group_table(groups: dict | None) -> list[str]:
    """The breakdown by shard, folder or domain, the first MAX_GROUP_ROWS groups."""
    if not groups:
        return []
    shown = groups["groups"][:MAX_GROUP_ROWS]
    note = groups_left_out(groups, len(shown))
    return [
        "",
        f"## {group_title(groups)}",
        "",
        f"| {groups['by']} | " + " | ".join(GROUP_HEADERS) + " |",
        "|---" * (len(GROUP_HEADERS) + 1) + "|",
        *[f"| {md_cell(g['group'])} | " + " | ".join(group_cells(g)) + " |" for g in shown],
        *(["", note] if note else []),
    ]


def _count_table(title: str, header: str, counts: dict) -> list[str]:
    return [
        "",
        f"## {title}",
        "",
        f"| {header} | images |",
        "|---|---|",
        *([f"| {md_cell(g)} | {n} |" for g, n in counts.items()] or ["| (none) | 0 |"]),
    ]


def markdown_report(summary: dict, listed: Listed) -> str:
    """report.md: the summary, then the first flagged and error rows (`listed`; all are in results.parquet)."""
    lines = markdown_summary(summary)
    flagged, errors = summary["counts"]["flagged"], summary["counts"]["error"]
    lines += ["", f"## Flagged images ({flagged})", "", "| id | generator | tool | evidence |", "|---|---|---|---|"]
    for r in listed.flagged[:MAX_LISTED_FLAGGED]:
        lines.append(
            f"| {md_cell(r['id'])} | {md_cell(r['generator'] or '')} | {md_cell(r.get('tool') or '')} | "
            f"{md_cell(flag_evidence(r, summary['per_detector']))} |"
        )
    lines += _more(flagged, MAX_LISTED_FLAGGED, 4)
    lines += ["", f"## Errors ({errors})", "", "| id | reason |", "|---|---|"]
    lines += [f"| {md_cell(r['id'])} | {md_cell(r['error'])} |" for r in listed.errors[:MAX_LISTED_ERRORS]]
    lines += _more(errors, MAX_LISTED_ERRORS, 2)
    return safe_text("\n".join(lines) + "\n", keep_layout=True)


def _more(total: int, shown: int, columns: int) -> list[str]:
    return [f"| ... | {total - shown} more in results.parquet |" + " |" * (columns - 2)] if total > shown else []


def md_cell(text: str) -> str:
    """Text from the data made safe for markdown: HTML escaped (file names may hold tags), no table
    breaks, no code spans."""
    return safe_text(escape(str(text), quote=False).replace("|", "\\|").replace("`", "&#96;").replace("\n", " "))
