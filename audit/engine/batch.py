"""The batch processor, run inside worker processes (and the Ray engine's actors): each record is
read and decoded once, the pixel detectors run, and model-ready pixels are prepared for the
embedding stage. A detector failing on one image costs that image's signal, never the batch."""

from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from multiprocessing import parent_process

from audit.detectors import build_pixel_detectors
from audit.detectors.base import ERROR, SYNTHETIC, Signal, overall_decision
from audit.detectors.model_families import attribute
from audit.engine.config import ScanConfig
from audit.engine.interrupt import die_with_parent
from audit.engine.journal import encode_cells
from audit.engine.pixels import PixelBudget
from audit.engine.watchdog import BATCH, ITEM, Slots, Watchdog
from audit.sources.decode import internal_error
from audit.sources.error_kinds import error_kind
from audit.sources.record import ImageRecord

_WORKER: dict = {}


def init_worker(
    config: ScanConfig,
    prepare: str | None,
    journal_columns: list[str] | None = None,
    slots: Slots | None = None,
    item_timeout: float | None = None,
    budget: PixelBudget | None = None,
) -> None:
    """Set up a worker (or the parent, to render rows). `journal_columns`: the journal's columns, when
    the rows reach the journal as the worker makes them (`journaled_batch` then encodes them). With
    `slots`, a watchdog ends the worker when one item's decoding, or the detectors on a batch, take
    longer than `item_timeout` per item. `budget`: the decoded pixels shared with the other workers
    (default: this process's own, the pixel limit)."""
    if slots is not None and parent_process() is not None:  # a local engine's worker: it ends with the scan
        die_with_parent(parent_process().pid)
    detectors = build_pixel_detectors(config)
    _WORKER.update(
        config=config,
        detectors=detectors,
        prepare=prepare,
        journal_columns=journal_columns,
        phash=prepare is not None,
        hard={d.name for d in detectors if d.hard_evidence},
        item_timeout=item_timeout,
        watchdog=Watchdog(slots) if slots is not None else None,
        budget=budget or PixelBudget(config.pixel_limit),
    )


def _watching(seq: int, phase: int, items: int = 1):
    watchdog, timeout = _WORKER.get("watchdog"), _WORKER.get("item_timeout")
    return watchdog.watching(seq, phase, timeout * items if timeout else math.inf) if watchdog else nullcontext()


def error_row(seq: int, record: ImageRecord, reason: str) -> dict:
    """The row of an item that failed outside the detectors (e.g. its worker was stopped)."""
    record.error = reason
    return _row(seq, record, {})


def process_batch(batch: list[tuple[int, ImageRecord]]) -> tuple[list[dict], dict]:
    """Rows with the pixel detectors' columns, and model-ready pixels by seq for the embedding stage.
    Whatever goes wrong with one record becomes that record's error row; the batch always completes.

    The batch runs in groups whose decoded pixels stay within the pixel limit and the scan's pixel
    budget: an image that does not fit is decoded after the group before it has been through the
    detectors and released (a huge image goes alone)."""
    rows, prepared = [], {}
    group, held = [], 0
    budget, limit = _WORKER["budget"], _WORKER["config"].pixel_limit
    try:
        for seq, record in batch:
            with _watching(seq, ITEM):
                pixels = record.pixels()  # read the bytes and the header only
            fits = held + pixels <= limit and budget.try_take(pixels)
            if not fits and group:
                _run_group(group, rows, prepared)
                budget.give(held)
                group, held = [], 0
            if not fits:
                budget.take(pixels)
            held += pixels
            with _watching(seq, ITEM):
                record.decoded()  # decode once; failures set record.error
            group.append((seq, record))
        _run_group(group, rows, prepared)
    finally:
        budget.give(held)
    return rows, prepared


def journaled_batch(batch: list[tuple[int, ImageRecord]]) -> tuple[list[dict], dict, bytes | None]:
    """`process_batch`, plus the rows' journal line payload (`encode_cells`) when the worker was given
    the journal's columns: encoded here, the rows cost the scan's main process only a checksum and a
    write."""
    rows, prepared = process_batch(batch)
    columns = _WORKER.get("journal_columns")
    return rows, prepared, encode_cells(rows, columns) if columns and rows else None


def _run_group(group: list[tuple[int, ImageRecord]], rows: list[dict], prepared: dict) -> None:
    """The detectors on decoded records, their rows appended to `rows`; their pixels released."""
    if not group:
        return
    records = [record for _, record in group]
    with _watching(group[0][0], BATCH, len(group)):
        signals = {d.name: _detect_safely(d, records) for d in _WORKER["detectors"]}
    for i, (seq, record) in enumerate(group):
        try:
            row = _row(seq, record, {name: sigs[i] for name, sigs in signals.items()})
            if record.error is None:
                _add_pixel_features(row, record, prepared, seq)
        except Exception as e:  # noqa: BLE001 - the item's error row, never the batch's end
            prepared.pop(seq, None)
            record.error = internal_error(e)
            row = _row(seq, record, {})
        rows.append(row)
        record.release()


def _add_pixel_features(row: dict, record: ImageRecord, prepared: dict, seq: int) -> None:
    """Model-ready pixels and the perceptual hash, when the scan needs them."""
    rgb = record.decoded().rgb
    if _WORKER["prepare"]:
        from audit.embedding.embedder import prepare_pixels

        prepared[seq] = prepare_pixels(rgb, _WORKER["prepare"])
    if _WORKER["phash"]:
        from audit.bank.phash import phash_hex

        row["phash"] = phash_hex(rgb)


def _detect_safely(detector, records: list[ImageRecord]) -> list[Signal]:
    """A detector crash on one image makes that image an error row (`internal error: ...`), never
    the batch's or the scan's end: the batch is retried one image at a time to isolate the culprit."""
    try:
        signals = detector.detect(records)
        if len(signals) == len(records):
            return signals
    except Exception:  # noqa: BLE001 - fall back to one image at a time
        pass
    signals = []
    for record in records:
        try:
            signals.append(detector.detect([record])[0])
        except Exception as e:  # noqa: BLE001
            record.error = record.error or f"{internal_error(e)} (in the {detector.name} detector)"
            signals.append(Signal(score=None, decision=ERROR, evidence=None))
    return signals


def _row(seq: int, record: ImageRecord, signals: dict[str, Signal]) -> dict:
    image = record._decoded
    data = record.data
    ok = record.error is None
    row = {
        "seq": seq,
        "id": record.id,
        "uri": record.uri,
        "status": "ok" if ok else "error",
        "error": record.error,
        "error_kind": error_kind(record.error),
        "format": image.format if image else None,
        "width": image.width if image else None,
        "height": image.height if image else None,
        "sha256": hashlib.sha256(data).hexdigest() if data else None,
        "phash": None,
        "url": record.url,
        "key": record.key,
        "caption": record.caption,
        "container": record.container,
    }
    for name in _WORKER["config"].detectors:
        signal = signals.get(name)
        row[f"{name}_score"] = signal.score if ok and signal else None
        row[f"{name}_decision"] = (signal.decision if signal else None) if ok else ERROR
        row[f"{name}_evidence"] = signal.evidence if ok and signal else None
    synthetic = {name: s for name, s in signals.items() if ok and s.decision == SYNTHETIC}
    row["flagged"] = bool(synthetic)
    row["hard_evidence"] = any(name in _WORKER["hard"] for name in synthetic)
    row["generator"], row["tool"] = attribute((s.generator, s.tool) for s in synthetic.values())
    row["decision"] = overall_decision(row)
    return row
