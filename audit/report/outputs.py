"""The files of a scan's output folder: results.parquet (its schema here), summary.json,
report.md and report.html, each written atomically."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.report.html import write_html_report
from audit.report.markdown import markdown_report
from audit.report.strict_json import strict_json

BASE_COLUMNS = [
    ("seq", pa.int64()), ("id", pa.string()), ("uri", pa.string()), ("status", pa.string()),
    ("error", pa.string()), ("format", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
    ("sha256", pa.string()), ("phash", pa.string()), ("url", pa.string()), ("key", pa.string()),
    ("caption", pa.string()),
]
TAIL_COLUMNS = [("flagged", pa.bool_()), ("hard_evidence", pa.bool_()), ("generator", pa.string()),
                ("tool", pa.string()), ("decision", pa.string())]


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
    write_atomically(out / "summary.json", lambda p: p.write_text(strict_json(result.summary)))
    write_atomically(out / "report.md", lambda p: p.write_text(markdown_report(result.summary, result.rows)))
    write_atomically(out / "report.html", lambda p: write_html_report(result, p))
