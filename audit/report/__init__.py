"""What a scan tells people and CI: the summary (summary.py), the output files (outputs.py:
results.parquet, summary.json, report.md via markdown.py, report.html via html.py and page.py),
the terminal tables (console.py), the gate (gate.py) and the CI formats (junit.py, github.py).
The wording every format shares lives in text.py, below the renderers."""

from audit.report.gate import exit_code, gate_checks

__all__ = ["exit_code", "gate_checks"]
