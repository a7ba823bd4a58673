"""`--format github`: the step summary appended to $GITHUB_STEP_SUMMARY and the workflow
commands (`::error` / `::warning`) that annotate the run."""
from __future__ import annotations

import os
from pathlib import Path

from audit.report.markdown import markdown_summary, md_cell

GITHUB_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"


def github_summary(summary: dict, checks: list[dict], fail_above: float | None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: `markdown_summary`, errors by reason and the gate's checks
    (the per-image tables stay in report.md and report.html)."""
    lines = markdown_summary(summary)
    errors = summary["errors"]
    lines += ["", f"## Errors ({errors['count']})", ""]
    if errors["by_reason"]:
        lines += ["| reason | items |", "|---|---|", *[f"| {md_cell(r)} | {n} |" for r, n in errors["by_reason"].items()]]
    if fail_above is None:
        lines += ["", "## Gate", "", "No threshold set (`--fail-above`): nothing gated."]
    else:
        verdict = "passed" if all(c["passed"] for c in checks) else "FAILED"
        lines += ["", f"## Gate: {verdict}", "", "| check | result | details |", "|---|---|---|"]
        lines += [f"| {md_cell(c['name'])} | {'passed' if c['passed'] else '**FAILED**'} | {md_cell(c['message'])} |"
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
