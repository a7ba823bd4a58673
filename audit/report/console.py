"""The terminal (rich): a console that never prints the data's control characters raw, the scan
summary table and the operating points of a calibration."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.segment import Segment
from rich.table import Table

from audit.report.safe_text import safe_text
from audit.report.text import baseline_lines, caveats, estimate_details, percent

CONSOLE_GROUPS = 5  # the most flagged groups shown under the table (all are in the reports)


class SafeConsole(Console):
    """A rich Console whose text, whatever it holds (file names, metadata, error messages), reaches
    the terminal with its control characters escaped; rich's own styling and cursor control,
    added when the text is rendered, are unchanged."""

    def _render_buffer(self, buffer) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(safe_text(segment.text, keep_layout=True), segment.style)
            for segment in buffer
        )


def summary_table(summary: dict) -> Table:
    table = Table(title="autophagy-audit scan", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    c, e = summary["counts"], summary["estimate"]
    low, high = e["interval"]
    table.add_row("images scanned", str(c["ok"]))
    table.add_row("errors", str(c["error"]))
    table.add_row("flagged by any detector", f"{c['flagged']} ({percent(e['flagged_fraction'])})")
    table.add_row("hard evidence (lower bound)", f"{c['hard_evidence']} ({percent(e['lower_bound'])})")
    corrected = e["operating_points"] is not None
    point = (
        percent(e["point"])
        if e["point"] is not None
        else "none (see WARNING)"
        if e["warnings"]
        else f"none ({e['note'] or 'nothing scanned'})"
    )
    table.add_row("estimated synthetic fraction" if corrected else "flagged fraction (uncorrected)", point)
    table.add_row(f"{int(100 * e['confidence'])}% interval", f"{percent(low)} - {percent(high)}")
    table.add_row("method", f"{e['method']}; {e['interval_method']} interval")
    if "duplicates" in summary:
        d = summary["duplicates"]
        table.add_row("near-duplicate clusters", f"{d['clusters']} ({d['flagged_copies']} flagged copies)")
    for name, n in summary["per_generator"].items():
        table.add_row(escape_markup(f"  generator: {name}"), str(n))
    for name, n in summary.get("per_tool", {}).items():
        table.add_row(escape_markup(f"  tool: {name}"), str(n))
    groups = summary.get("groups")
    for g in groups["groups"][:CONSOLE_GROUPS] if groups and groups["count"] > 1 else []:
        table.add_row(
            escape_markup(f"  {groups['by']}: {g['group']}"),
            f"{g['flagged']}/{g['ok']} flagged ({percent(g['flagged_share'])})",
        )
    for reason, n in summary["errors"]["by_reason"].items():
        table.add_row(f"  error: {reason}", str(n))
    table.caption = escape_markup(
        "\n".join(
            [
                *[f"WARNING: {w}" for w in e["warnings"]],
                *estimate_details(e),
                e["note"],
                *caveats(summary),
                *baseline_lines(summary),
            ]
        )
    )
    return table


def calibration_table(calibration: dict) -> Table:
    """Operating points measured by `audit calibrate`, one row per detector and the combined rule."""
    table = Table(title="detector operating points (held-out part)", title_justify="left")
    for column in ("detector", "TPR", "95% CI", "FPR", "95% CI", "synthetic", "real"):
        table.add_column(column, justify="left" if column == "detector" else "right")
    points = {
        **calibration["detectors"],
        "combined rule": calibration["combined"],
        "hard evidence": calibration["hard_evidence"],
        "combined rule, images without hard evidence": calibration["combined_rest"],
    }
    for name, p in points.items():
        table.add_row(
            name,
            percent(p["tpr"]),
            "{} - {}".format(*map(percent, p["tpr_interval"])),
            percent(p["fpr"]),
            "{} - {}".format(*map(percent, p["fpr_interval"])),
            str(p["n_synthetic"]),
            str(p["n_real"]),
        )
    probe = calibration["probe"]
    table.caption = "\n".join(
        [f"probe: {probe.get('skipped') or probe.get('metrics')}", *[f"NOTE: {n}" for n in calibration["notes"]]]
    )
    return table
