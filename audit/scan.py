"""The scan pipeline: source -> batches of records -> detectors -> result rows -> outputs.

Each record is read and decoded once, inside a worker process (decoding and detectors run
in parallel); rows are journaled per batch so `resume=True` continues an interrupted scan.
Rows come back in source order whatever the worker timing, so results are deterministic.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

from audit.decode import DEFAULT_PIXEL_LIMIT
from audit.detectors import DEFAULT, build_detectors
from audit.detectors.base import SYNTHETIC, UNKNOWN, Signal
from audit.journal import JOURNAL_NAME, Journal
from audit.sources import ImageRecord, iter_records
from audit.summary import summarise

Progress = Callable[[int], None]


@dataclass
class ScanConfig:
    """Options that change results (recorded in the journal and the summary)."""

    detectors: tuple[str, ...] = DEFAULT
    pixel_limit: int = DEFAULT_PIXEL_LIMIT
    watermark_keys: tuple[str, ...] = ()
    watermark_p_threshold: float | None = None
    column: str | None = None

    def as_dict(self) -> dict:
        """JSON-ready (lists, not tuples), as written to the journal and the summary."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class ScanResult:
    rows: list[dict]
    summary: dict
    out: Path | None = None
    detectors: tuple[str, ...] = field(default=DEFAULT)


def scan(source: str, out: str | Path | None = None, *, config: ScanConfig | None = None,
         workers: int | None = None, batch_size: int = 16, resume: bool = False,
         progress: Progress | None = None) -> ScanResult:
    """Scan `source`; write results.parquet, summary.json and report.md into `out` when given.

    Raises SourceError for an unreadable source, ValueError for bad options and
    JournalMismatch when resuming a scan that used other settings.
    """
    config = config or ScanConfig()
    build_detectors(config.detectors, config.watermark_keys, config.watermark_p_threshold)  # validate early
    workers = default_workers() if workers is None else workers
    records = iter_records(source, pixel_limit=config.pixel_limit, column=config.column)
    first = next(records, None)  # opens the source now, so a bad source fails before any output
    records = itertools.chain([first] if first else [], records)

    journal = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        journal = Journal(out / JOURNAL_NAME, {"source": source, **config.as_dict()}, resume)
    try:
        rows = _run(records, config, workers, batch_size, journal, progress)
    finally:
        if journal is not None:
            journal.close()
    rows.sort(key=lambda r: r["seq"])
    summary = summarise(rows, config.detectors, source=source, config=config.as_dict())
    result = ScanResult(rows=rows, summary=summary, out=out, detectors=config.detectors)
    if out is not None:
        from audit.report import write_outputs

        write_outputs(result)
    return result


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _run(records: Iterable[ImageRecord], config: ScanConfig, workers: int, batch_size: int,
         journal: Journal | None, progress: Progress | None) -> list[dict]:
    done = {row["id"] for row in journal.rows} if journal else set()
    rows = list(journal.rows) if journal else []
    if progress and rows:
        progress(len(rows))

    def finish(batch_rows: list[dict]) -> None:
        if journal:
            journal.append(batch_rows)
        rows.extend(batch_rows)
        if progress:
            progress(len(batch_rows))

    batches = _batches(_numbered(records, done), batch_size)
    if workers <= 1:
        _init_worker(config)
        for batch in batches:
            finish(_process_batch(batch))
        return rows
    ctx = get_context("spawn")  # no fork: parents may hold threads (Arrow, HF datasets, torch)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config,)) as pool:
        pending = set()
        for batch in batches:
            pending.add(pool.submit(_process_batch, batch))
            if len(pending) >= 2 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(future.result())
        for future in pending:
            finish(future.result())
    return rows


def _numbered(records: Iterable[ImageRecord], done: set[str]) -> Iterator[tuple[int, ImageRecord]]:
    """(position in source, record), skipping ids already journaled; duplicate ids get a suffix."""
    seen: dict[str, int] = {}
    for seq, record in enumerate(records):
        count = seen.get(record.id, 0)
        seen[record.id] = count + 1
        if count:
            record.id = f"{record.id}#{count}"
        if record.id not in done:
            yield seq, record


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(itertools.islice(items, max(1, size))):
        yield batch


# --- inside worker processes ---------------------------------------------------------------

_DETECTORS: list = []


def _init_worker(config: ScanConfig) -> None:
    global _DETECTORS
    _DETECTORS = build_detectors(config.detectors, config.watermark_keys, config.watermark_p_threshold)


def _process_batch(batch: list[tuple[int, ImageRecord]]) -> list[dict]:
    records = [record for _, record in batch]
    for record in records:
        record.decoded()  # read and decode once; failures set record.error
    signals = {d.name: _detect_safely(d, records) for d in _DETECTORS}
    return [_row(seq, record, {name: sigs[i] for name, sigs in signals.items()})
            for i, (seq, record) in enumerate(batch)]


def _detect_safely(detector, records: list[ImageRecord]) -> list[Signal]:
    """A detector crash on one image costs that image's signal, never the batch or the scan."""
    try:
        return detector.detect(records)
    except Exception:  # noqa: BLE001 - fall back to one image at a time to isolate the culprit
        pass
    signals = []
    for record in records:
        try:
            signals.append(detector.detect([record])[0])
        except Exception as e:  # noqa: BLE001
            signals.append(Signal(score=None, decision=UNKNOWN, evidence=f"detector error: {type(e).__name__}: {e}"))
    return signals


def _row(seq: int, record: ImageRecord, signals: dict[str, Signal]) -> dict:
    image = record._decoded
    data = record.data
    row = {
        "seq": seq,
        "id": record.id,
        "uri": record.uri,
        "status": "error" if record.error else "ok",
        "error": record.error,
        "format": image.format if image else None,
        "width": image.width if image else None,
        "height": image.height if image else None,
        "sha256": hashlib.sha256(data).hexdigest() if data else None,
    }
    generators = []
    for name, signal in signals.items():
        ok = record.error is None
        row[f"{name}_score"] = signal.score if ok else None
        row[f"{name}_decision"] = signal.decision if ok else None
        row[f"{name}_evidence"] = signal.evidence if ok else None
        if ok and signal.decision == SYNTHETIC and signal.generator:
            generators.append(signal.generator)
    row["flagged"] = record.error is None and any(s.decision == SYNTHETIC for s in signals.values())
    row["generator"] = generators[0] if generators else None
    return row
