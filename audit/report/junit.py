"""JUnit XML of the gate's checks (`--junit FILE`), one <testcase> per check."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from audit.atomic import write_atomically


def write_junit(path: str | Path, checks: list[dict]) -> None:
    """One <testcase> per check: {'name', 'passed', 'message'}."""
    failures = sum(1 for c in checks if not c["passed"])
    cases = []
    for c in checks:
        body = "" if c["passed"] else f"<failure message={quoteattr(c['message'])}>{escape(c['message'])}</failure>"
        out = f"<system-out>{escape(c['message'])}</system-out>"
        cases.append(f'  <testcase classname="autophagy-audit" name={quoteattr(c["name"])}>{body}{out}</testcase>')
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="autophagy-audit" tests="{len(checks)}" '
        f'failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n"
    )
    write_atomically(Path(path), lambda p: p.write_text(xml, encoding="utf-8"))
