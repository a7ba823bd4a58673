"""Generated documentation stays in step with the code: docs/cli.md is what
docs/make_cli_reference.py writes now, and the README's links to docs/ resolve."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "cli.md"


def _render() -> str:
    return runpy.run_path(str(ROOT / "docs" / "make_cli_reference.py"))["render"]()


def test_cli_reference_lists_every_command_with_its_options():
    text = _render()
    for command in (
        "audit",
        "audit scan",
        "audit calibrate",
        "audit demo",
        "audit bank add",
        "audit bank info",
        "audit models pull",
        "audit simulate",
    ):
        assert f"\n## {command}\n" in text, f"{command} missing from the reference"
    assert "--fail-above FLOAT RANGE" in text and "--format [table|json|github]" in text
    assert "--contamination" in text  # simulate is loaded lazily from loops/cli.py
    assert max(len(line) for line in text.splitlines()) <= 100  # the fixed width, whatever the terminal


def test_committed_cli_reference_is_up_to_date():
    assert REFERENCE.read_text(encoding="utf-8") == _render(), (
        "docs/cli.md is out of date with the command-line options: run "
        "`.venv/bin/python docs/make_cli_reference.py` and commit docs/cli.md"
    )


def test_readme_links_to_docs_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(((?:docs|examples)/[^)#\s]+)", readme))
    assert {"docs/cli.md", "docs/report-screenshot.png"} <= links
    for link in links:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
    assert (ROOT / "docs" / "report-screenshot.png").stat().st_size < 300_000
