"""What a scan returns: its summary, its output folder, and its rows, read from results.parquet
only when asked for (a scan without an output folder keeps them in memory instead)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit.detectors import DEFAULT
from audit.report.outputs import RESULTS_FILE, results_schema


@dataclass
class ScanResult:
    """What a scan found: the summary (summary.json), `out` (the output folder, when one was written)
    and `rows`, one per item (the columns of results.parquet)."""

    summary: dict
    out: Path | None = None
    detectors: tuple[str, ...] = field(default=DEFAULT)
    stage: object = field(default=None, repr=False)  # the EmbeddingStage, to look up embeddings
    kept_rows: list[dict] | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[dict]:
        """Every row in source order: read from results.parquet (all of it, so mind the scan's size)."""
        if self.kept_rows is None:
            self.kept_rows = self.to_arrow().to_pylist()
        return self.kept_rows

    def to_arrow(self):
        """The rows as a pyarrow Table with results.parquet's schema."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.kept_rows is None and self.out is not None:
            return pq.read_table(Path(self.out) / RESULTS_FILE, schema=results_schema(self.detectors))
        return pa.Table.from_pylist(self.kept_rows or [], schema=results_schema(self.detectors))

    def to_pandas(self):
        """The rows as a pandas DataFrame."""
        return self.to_arrow().to_pandas()
