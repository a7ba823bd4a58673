"""`--format github`: the step summary appended to $GITHUB_STEP_SUMMARY and the workflow
commands (`::error` / `::warning`) that annotate the run."""

from __future__ import annotations

import os
from pathlib import Path

from audit.report.markdown import markdown_summary, md_cell
from audit.report.safe_text import safe_text

GITHUB_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
ANNOTATED_ERRORS = 5  # error items named in the annotation


def github_summary(summary: dict, checks: list[dict], fail_above: float | None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: `markdown_summary`, errors by reason and the gate's checks
    (the per-image tables stay in report.md and report.html)."""
    lines = markdown_summary(summary)
    errors = summary["errors"]
    lines += ["", f"## Errors ({errors['count']})", ""]
    if errors["by_reason"]:
        lines += [
            "| reason | items |",
            "|---|---|",
            *[f"| {md_cell(r)} | {n} |" for r, n in errors["by_reason"].items()],
        ]
    first = errors.get("first", [])
    if first:
        lines += [
            "",
            "| item | error |",
            "|---|---|",
            *[f"| {md_cell(e['id'])} | {md_cell(e['error'])} |" for e in first],
        ]
        if errors["count"] > len(first):
            lines.append(f"| ... | {errors['count'] - len(first)} more in results.parquet and report.html |")
    if fail_above is None:
        lines += ["", "## Gate", "", "No threshold set (`--fail-above`): nothing gated."]
    else:
        verdict = "passed" if all(c["passed"] for c in checks) else "FAILED"
        lines += ["", f"## Gate: {verdict}", "", "| check | result | details |", "|---|---|---|"]
        lines += [
            f"| {md_cell(c['name'])} | {'passed' if c['passed'] else '**FAILED**'} | {md_cell(c['message'])} |"
            for c in checks
        ]
    return safe_text("\n".join(lines) + "\n", keep_layout=True)


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
    """GitHub workflow commands: failed checks as errors; estimate warnings, detectors that did not run
    and error rows (their count and the first few items) as warnings."""
    warnings = [
        *summary["estimate"]["warnings"],
        *[f"detector {name} did not run: {why}" for name, why in summary["skipped_detectors"].items()],
    ]
    errors = summary["errors"]
    if errors["count"]:
        named = ", ".join(e["id"] for e in errors.get("first", [])[:ANNOTATED_ERRORS])
        more = f" and {errors['count'] - ANNOTATED_ERRORS} more" if errors["count"] > ANNOTATED_ERRORS else ""
        warnings.append(f"{errors['count']} items could not be scanned: {named}{more} (see the step summary)")
    return [_workflow_command("error", f"{c['name']}: {c['message']}") for c in checks if not c["passed"]] + [
        _workflow_command("warning", w) for w in warnings
    ]


def _workflow_command(kind: str, message: str) -> str:
    text = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::{kind} title=autophagy-audit::{safe_text(text)}"
