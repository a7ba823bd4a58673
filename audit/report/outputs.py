"""The files of a scan's output folder: results.parquet (its schema here), summary.json,
report.md and report.html, each written atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.report.html import write_html_report
from audit.report.markdown import markdown_report
from audit.report.strict_json import strict_json
from audit.report.tally import Listed

RESULTS_FILE = "results.parquet"

BASE_COLUMNS = [
    ("seq", pa.int64()),
    ("id", pa.string()),
    ("uri", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("error_kind", pa.string()),
    ("format", pa.string()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("sha256", pa.string()),
    ("phash", pa.string()),
    ("url", pa.string()),
    ("key", pa.string()),
    ("caption", pa.string()),
    ("container", pa.string()),  # the tar or parquet file holding the item; the uri is `container#item`
]
TAIL_COLUMNS = [
    ("flagged", pa.bool_()),
    ("hard_evidence", pa.bool_()),
    ("generator", pa.string()),
    ("tool", pa.string()),
    ("decision", pa.string()),
]


def results_schema(detectors) -> pa.Schema:
    per_detector = []
    for name in detectors:
        per_detector += [
            (f"{name}_score", pa.float64()),
            (f"{name}_decision", pa.string()),
            (f"{name}_evidence", pa.string()),
        ]
    return pa.schema(BASE_COLUMNS + per_detector + TAIL_COLUMNS)


def write_results(out: Path, tables: Iterable[pa.Table], schema: pa.Schema) -> None:
    """results.parquet from `tables` as they stream by (one row group each), written atomically."""

    def write(path: Path) -> None:
        with pq.ParquetWriter(path, schema) as writer:
            for table in tables:
                writer.write_table(table)

    write_atomically(Path(out) / RESULTS_FILE, write)


def write_reports(out: Path, summary: dict, listed: Listed) -> None:
    """summary.json, report.md and report.html."""
    out = Path(out)
    write_atomically(out / "summary.json", lambda p: p.write_text(strict_json(summary)))
    write_atomically(out / "report.md", lambda p: p.write_text(markdown_report(summary, listed)))
    write_html_report(summary, listed, out / "report.html")
