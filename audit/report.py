"""Scan outputs: results.parquet, summary.json, report.md, report.html (built in report_html.py),
the terminal table, and the CI formats: JUnit XML and the GitHub step summary."""
from __future__ import annotations

import json
import os
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa
import pyarrow.parquet as pq
from rich.markup import escape as escape_markup
from rich.table import Table

from audit.atomic import write_atomically

BASE_COLUMNS = [
    ("seq", pa.int64()), ("id", pa.string()), ("uri", pa.string()), ("status", pa.string()),
    ("error", pa.string()), ("format", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
    ("sha256", pa.string()), ("phash", pa.string()),
]
TAIL_COLUMNS = [("flagged", pa.bool_()), ("hard_evidence", pa.bool_()), ("generator", pa.string())]
MAX_LISTED_ERRORS = 50
GITHUB_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"


def results_schema(detectors) -> pa.Schema:
    per_detector = []
    for name in detectors:
        per_detector += [(f"{name}_score", pa.float64()), (f"{name}_decision", pa.string()),
                         (f"{name}_evidence", pa.string())]
    return pa.schema(BASE_COLUMNS + per_detector + TAIL_COLUMNS)


def write_outputs(result) -> None:
    out = Path(result.out)
    table = pa.Table.from_pylist(result.rows, schema=results_schema(result.detectors))
    write_atomically(out / "results.parquet", lambda p: pq.write_table(table, p))
    write_atomically(out / "summary.json", lambda p: p.write_text(json.dumps(result.summary, indent=2) + "\n"))
    write_atomically(out / "report.md", lambda p: p.write_text(markdown_report(result.summary, result.rows)))
    from audit.report_html import (
        write_html_report,  # imports this module: a local import avoids the cycle
    )

    write_atomically(out / "report.html", lambda p: write_html_report(result, p))


def percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def headline(summary: dict) -> str:
    c, e = summary["counts"], summary["estimate"]
    low, high = e["interval"]
    interval = f"{int(100 * e['confidence'])}% CI {percent(low)}-{percent(high)}"
    hard = f"hard evidence on {c['hard_evidence']} ({percent(e['lower_bound'])}, a lower bound); {c['error']} errors"
    if e["operating_points"] is None:
        return f"{c['flagged']} of {c['ok']} images flagged ({percent(e['flagged_fraction'])}, {interval}); {hard}"
    point = "no point estimate" if e["point"] is None else f"estimated synthetic fraction {percent(e['point'])}"
    return f"{point} ({interval}, corrected with calibration); {c['flagged']} of {c['ok']} images flagged; {hard}"


def estimate_details(e: dict) -> list[str]:
    """What a corrected estimate rests on: the cross-check and the operating points used."""
    if e["operating_points"] is None:
        return []
    cross, points = e["cross_check"], e["operating_points"]
    rest, hard = points["rest"], points["hard_evidence"]
    low, high = points["tpr_minus_fpr_interval"]
    return [
        f"Cross-check, {cross['method']}: " + (percent(cross["point"]) if cross["point"] is not None
                                              else f"n/a ({cross.get('skipped', 'no estimate')})"),
        f"Operating point used, combined rule on calibration images without hard evidence: TPR {percent(rest['tpr'])} "
        f"({rest['tp']}/{rest['n_synthetic']}), FPR {percent(rest['fpr'])} ({rest['fp']}/{rest['n_real']}), "
        f"TPR - FPR {percent(points['tpr_minus_fpr'])} (95% CI {percent(low)} to {percent(high)})",
        f"Hard evidence in calibration: on {hard['tp']}/{hard['n_synthetic']} synthetic and "
        f"{hard['fp']}/{hard['n_real']} real images",
    ]


def caveats(summary: dict) -> list[str]:
    """Lines a reader must see: skipped detectors and meaningless (random) embeddings."""
    lines = [f"detector {name} did not run: {why}" for name, why in summary["skipped_detectors"].items()]
    return lines + [f"NOTE: {note}" for note in summary["notes"]]


def markdown_summary(summary: dict) -> list[str]:
    """report.md without its per-image tables: the estimate, warnings, caveats and the
    per-detector and per-generator counts. Also the head of the GitHub step summary."""
    e = summary["estimate"]
    lines = [
        "# Synthetic-image audit", "",
        f"Source: `{summary['source']}`", "",
        f"**{headline(summary)}**", "",
        f"Method: {e['method']}, {e['interval_method']} interval. {e['note']}", "",
        *[f"> **WARNING:** {line}\n" for line in e["warnings"]],
        *[f"- {line}" for line in estimate_details(e)], "",
        *[f"> {line}\n" for line in caveats(summary)],
        "## Detectors", "", "| detector | synthetic | real | unknown |", "|---|---|---|---|",
    ]
    for name, counts in summary["per_detector"].items():
        lines.append(f"| {name} | {counts.get('synthetic', 0)} | {counts.get('real', 0)} | {counts.get('unknown', 0)} |")
    lines += ["", "## Generators", "", "| generator | images |", "|---|---|"]
    return lines + ([f"| {_md(g)} | {n} |" for g, n in summary["per_generator"].items()] or ["| (none) | 0 |"])


def markdown_report(summary: dict, rows: list[dict]) -> str:
    lines = markdown_summary(summary)
    flagged = [r for r in rows if r["flagged"]]
    lines += ["", f"## Flagged images ({len(flagged)})", "", "| id | generator | evidence |", "|---|---|---|"]
    for r in flagged:
        lines.append(f"| {_md(r['id'])} | {_md(r['generator'] or '')} | {_md(flag_evidence(r, summary['per_detector']))} |")
    errors = [r for r in rows if r["status"] == "error"]
    lines += ["", f"## Errors ({len(errors)})", "", "| id | reason |", "|---|---|"]
    lines += [f"| {_md(r['id'])} | {_md(r['error'])} |" for r in errors[:MAX_LISTED_ERRORS]]
    if len(errors) > MAX_LISTED_ERRORS:
        lines.append(f"| ... | {len(errors) - MAX_LISTED_ERRORS} more in results.parquet |")
    return "\n".join(lines) + "\n"


def github_summary(summary: dict, checks: list[dict], fail_above: float | None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: `markdown_summary`, errors by reason and the gate's checks
    (the per-image tables stay in report.md and report.html)."""
    lines = markdown_summary(summary)
    errors = summary["errors"]
    lines += ["", f"## Errors ({errors['count']})", ""]
    if errors["by_reason"]:
        lines += ["| reason | items |", "|---|---|", *[f"| {_md(r)} | {n} |" for r, n in errors["by_reason"].items()]]
    if fail_above is None:
        lines += ["", "## Gate", "", "No threshold set (`--fail-above`): nothing gated."]
    else:
        verdict = "passed" if all(c["passed"] for c in checks) else "FAILED"
        lines += ["", f"## Gate: {verdict}", "", "| check | result | details |", "|---|---|---|"]
        lines += [f"| {_md(c['name'])} | {'passed' if c['passed'] else '**FAILED**'} | {_md(c['message'])} |"
                  for c in checks]
    return "\n".join(lines) + "\n"


def append_github_summary(markdown: str) -> Path | None:
    """Append to the file $GITHUB_STEP_SUMMARY names (GitHub shows it on the run's page), after a
    blank line when it already holds something; None when the variable is unset."""
    name = os.environ.get(GITHUB_SUMMARY_VARIABLE)
    if not name:
        return None
    with open(name, "a", encoding="utf-8") as f:
        f.write(("\n" if f.tell() else "") + markdown)
    return Path(name)


def github_annotations(summary: dict, checks: list[dict]) -> list[str]:
    """GitHub workflow commands that show failed checks as errors and estimate warnings as warnings."""
    return ([_workflow_command("error", f"{c['name']}: {c['message']}") for c in checks if not c["passed"]]
            + [_workflow_command("warning", w) for w in summary["estimate"]["warnings"]])


def _workflow_command(kind: str, message: str) -> str:
    text = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::{kind} title=autophagy-audit::{text}"


def flag_evidence(row: dict, detectors) -> str:
    """The evidence of every detector that decided the row is synthetic."""
    return "; ".join(row[f"{d}_evidence"] for d in detectors if row[f"{d}_decision"] == "synthetic")


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


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
    point = "none (see WARNING)" if e["point"] is None else percent(e["point"])
    table.add_row("estimated synthetic fraction" if corrected else "flagged fraction (uncorrected)", point)
    table.add_row(f"{int(100 * e['confidence'])}% interval", f"{percent(low)} - {percent(high)}")
    table.add_row("method", f"{e['method']}; {e['interval_method']} interval")
    if "duplicates" in summary:
        d = summary["duplicates"]
        table.add_row("near-duplicate clusters", f"{d['clusters']} ({d['flagged_copies']} flagged copies)")
    for name, n in summary["per_generator"].items():
        table.add_row(f"  generator: {name}", str(n))
    for reason, n in summary["errors"]["by_reason"].items():
        table.add_row(f"  error: {reason}", str(n))
    table.caption = escape_markup("\n".join([*[f"WARNING: {w}" for w in e["warnings"]], *estimate_details(e),
                                              e["note"], *caveats(summary)]))
    return table


def write_junit(path: str | Path, checks: list[dict]) -> None:
    """One <testcase> per check: {'name', 'passed', 'message'}."""
    failures = sum(1 for c in checks if not c["passed"])
    cases = []
    for c in checks:
        body = "" if c["passed"] else f"<failure message={quoteattr(c['message'])}>{escape(c['message'])}</failure>"
        out = f"<system-out>{escape(c['message'])}</system-out>"
        cases.append(f'  <testcase classname="autophagy-audit" name={quoteattr(c["name"])}>{body}{out}</testcase>')
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="autophagy-audit" tests="{len(checks)}" '
           f'failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")
    Path(path).write_text(xml, encoding="utf-8")


def calibration_table(calibration: dict) -> Table:
    """Operating points measured by `audit calibrate`, one row per detector and the combined rule."""
    table = Table(title="detector operating points (held-out part)", title_justify="left")
    for column in ("detector", "TPR", "95% CI", "FPR", "95% CI", "synthetic", "real"):
        table.add_column(column, justify="left" if column == "detector" else "right")
    points = {**calibration["detectors"], "combined rule": calibration["combined"],
              "hard evidence": calibration["hard_evidence"],
              "combined rule, images without hard evidence": calibration["combined_rest"]}
    for name, p in points.items():
        table.add_row(name, percent(p["tpr"]), "{} - {}".format(*map(percent, p["tpr_interval"])),
                      percent(p["fpr"]), "{} - {}".format(*map(percent, p["fpr_interval"])),
                      str(p["n_synthetic"]), str(p["n_real"]))
    probe = calibration["probe"]
    table.caption = "\n".join(
        [f"probe: {probe.get('skipped') or probe.get('metrics')}", *[f"NOTE: {n}" for n in calibration["notes"]]])
    return table
