"""The end of a scan, the same for both engines: the committed rows stream past once, in source
order, into results.parquet and the summary's tally; then summary.json, report.md and report.html.
Nothing holds all the rows, except for a scan without an output folder, whose caller gets them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from audit.compare import compare
from audit.engine.config import ScanConfig, load_calibration
from audit.engine.result import ScanResult
from audit.report.outputs import results_schema, write_reports, write_results
from audit.report.summary import new_tally, tally_summary
from audit.sources import SourceStats

TALLY_ROWS = 4096  # rows turned into Python objects at a time


def finish_scan(
    tables: Iterable[pa.Table],
    source: str,
    config: ScanConfig,
    out: Path | None,
    stage,
    stats: SourceStats,
    baseline: tuple[str, dict] | None = None,
    notes: list[str] = (),
) -> ScanResult:
    """Write the outputs (when `out` is given) from `tables`, the rows in source order with
    results.parquet's schema; `baseline` is (its folder, its summary) for the comparison; `notes`:
    what the summary should say besides the stage's (e.g. what a resume repaired)."""
    tally = new_tally(config, stage)
    kept: list[dict] | None = [] if out is None else None

    def tallied() -> Iterator[pa.Table]:
        for table in tables:
            for batch in table.to_batches(max_chunksize=TALLY_ROWS):
                rows = batch.to_pylist()
                tally.add(rows)
                if kept is not None:
                    kept.extend(rows)
            yield table

    if out is None:
        for _ in tallied():
            pass
    else:
        write_results(out, tallied(), results_schema(config.detectors))
    summary = tally_summary(tally, config, source, stage, load_calibration(config.calibration))
    summary["source_files"] = stats.as_dict()
    summary["notes"] = [*notes, *summary.get("notes", [])]
    if baseline:
        summary["baseline"] = compare(baseline[1], summary, baseline[0])
    if out is not None:
        write_reports(out, summary, tally.listed)
    return ScanResult(summary=summary, out=out, detectors=config.detectors, stage=stage, kept_rows=kept)
