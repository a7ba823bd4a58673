"""The scan pipeline: source -> batches of records -> detectors -> result rows -> outputs.

Each record is read and decoded once, inside a worker process, where the pixel detectors run
and model-ready pixels are prepared; the main process embeds each finished batch once and runs
the embedding detectors while workers decode the next batches. Rows are journaled per batch
so `resume=True` continues an interrupted scan; they come back in source order whatever the
worker timing, so results are deterministic.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from audit.compare import load_baseline
from audit.detectors import build_embedding_detectors, build_pixel_detectors
from audit.engine.batch import init_worker, process_batch
from audit.engine.config import ScanConfig
from audit.engine.finish import finish_scan
from audit.engine.out_folder import OutFolder, check_out_folder, clear_folder
from audit.engine.pool import run_in_workers
from audit.engine.result import ScanResult
from audit.engine.results_store import ResultsStore, SeqRanges
from audit.report.outputs import results_schema
from audit.sources import ImageRecord, SourceError, SourceStats, hint_for_empty, iter_records

Progress = Callable[[int], None]
EMBEDDINGS_DIR = "embeddings"
DEFAULT_ITEM_TIMEOUT = 60.0  # seconds one item may take in a worker process
BATCH_BYTES = 256 * 1024 * 1024  # encoded bytes one batch may hold in memory


def scan(
    source: str,
    out: str | Path | None = None,
    *,
    config: ScanConfig | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    resume: bool = False,
    progress: Progress | None = None,
    embedding_cache: str | Path | None = None,
    item_timeout: float | None = DEFAULT_ITEM_TIMEOUT,
    overwrite: bool = False,
    baseline: str | Path | None = None,
) -> ScanResult:
    """Scan `source`; write results.parquet, summary.json, report.md and report.html into `out` when given.

    With worker processes (workers > 1), an item whose decoding takes longer than `item_timeout`
    seconds (or that kills its worker) becomes an error row and its worker is replaced.

    An `out` that holds another scan is refused unless `resume` (continue it) or `overwrite`.
    `baseline`: the output folder of an earlier scan to compare with (summary["baseline"]).
    Raises SourceError for an unreadable source or one without any image, ValueError for bad
    options, OutFolderError for an `out` in use, JournalMismatch when resuming with other settings.
    """
    config = (config or ScanConfig()).resolved()
    build_pixel_detectors(config)  # validates watermark keys before any work
    workers = default_workers() if workers is None else workers
    earlier = load_baseline(baseline) if baseline else None  # checked before any work
    out = Path(out) if out is not None else None
    if out is not None:
        check_out_folder(out, resume, overwrite)
    stats = SourceStats()
    records = source_records(source, config, stats)
    first = next(records, None)  # opens the source now, so a bad source fails before any output
    if first is None:
        skipped = f" ({stats.skipped} files that are not images were skipped)" if stats.skipped else ""
        raise SourceError(f"no images found in {source}{skipped}{hint_for_empty(source)}")
    records = itertools.chain([first], records)

    with (
        OutFolder(out, clear=False) if out is not None else contextlib.nullcontext() as lock,
        _results_folder(out) as folder,
    ):
        # a resume is checked first: refused, it has changed nothing on disk
        store = ResultsStore(folder, {"source": source, **config.as_dict()}, resume, results_schema(config.detectors))
        if lock is not None:
            lock.clear_results()
            if overwrite and not resume:  # the replaced scan's embedding cache goes with it
                clear_folder(out / EMBEDDINGS_DIR)
        stage = None
        try:
            stage = _embedding_stage(config, embedding_cache or (out / EMBEDDINGS_DIR if out else None))
            _run(records, config, workers, batch_size, store, stage, progress, item_timeout)
        finally:
            store.close()
            if stage is not None:
                stage.close()
        return finish_scan(
            store.ordered_tables(),
            source,
            config,
            out,
            stage,
            stats,
            (str(baseline), earlier) if earlier else None,
            notes=store.notes,
        )


@contextlib.contextmanager
def _results_folder(out: Path | None):
    """Where the rows go while the scan runs: `out`, or a temporary folder when there is none."""
    if out is not None:
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="audit-scan-") as tmp:
        yield Path(tmp)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _embedding_stage(config: ScanConfig, cache_dir: Path | None):
    if not config.needs_embeddings:
        return None
    from audit.embedding.stage import EmbeddingStage

    return EmbeddingStage(build_embedding_detectors(config), config.embedder, config.preprocess, cache_dir)


def _run(
    records: Iterable[ImageRecord],
    config: ScanConfig,
    workers: int,
    batch_size: int,
    store: ResultsStore,
    stage,
    progress: Progress | None,
    item_timeout: float | None,
) -> None:
    if progress and store.resumed:
        progress(store.resumed)
    prepare = config.preprocess if stage is not None and stage.active else None

    def finish(result: tuple[list[dict], dict, bytes | None]) -> None:
        batch_rows, prepared, journal_cells = result
        if stage is not None:
            stage.apply(batch_rows, prepared)
        store.append(batch_rows, journal_cells)
        if progress:
            progress(len(batch_rows))

    batches = _batches(_numbered(records, store.done), batch_size)
    if workers <= 1:
        init_worker(config, prepare)
        for batch in batches:
            finish((*process_batch(batch), None))
        return
    # without an embedding stage the rows reach the journal as the workers make them: they encode them
    journal_columns = store.journal.columns if stage is None else None
    run_in_workers(batches, finish, workers, (config, prepare, journal_columns), item_timeout)


def _numbered(records: Iterable[ImageRecord], done: SeqRanges) -> Iterator[tuple[int, ImageRecord]]:
    """(position in source, record), skipping positions already done; a repeated id gets a suffix.
    What is remembered is bounded by one id scope (a shard, a parquet file, a folder's own files),
    not by the dataset."""
    seen: dict[str, int] = {}
    scope = None
    for seq, record in enumerate(records):
        if id_scope(record.id, record.container) != scope:
            scope, seen = id_scope(record.id, record.container), {}
        record.id = unique_id(record.id, seen)
        if seq not in done:
            yield seq, record


def source_records(source: str, config: ScanConfig, stats: SourceStats | None = None):
    """The records of `source` as the scan's configuration reads them (pixel limit, column, links,
    missing shards, the root of path cells)."""
    return iter_records(
        source,
        config.pixel_limit,
        config.column,
        config.follow_links,
        config.allow_missing_shards,
        stats,
        config.paths_under,
    )


def id_scope(record_id: str, container: str | None) -> str:
    """Where a record's id can repeat, and whose records come one after another: its tar shard or
    parquet file (its container), else the folder holding it (the id's parent). Two
    records of different scopes never share an id. A `#` in a file or folder name changes nothing."""
    if container:
        return container
    return record_id.rsplit("/", 1)[0] if "/" in record_id else ""


def unique_id(record_id: str, seen: dict[str, int]) -> str:
    """`record_id`, or for a repeat `record_id#n` with the smallest n > 0 that no earlier record holds
    (a real `a.png#1` later in the source is then `a.png#1#1`): unique by construction and the same
    for the same source order, so a resume skips exactly the ids it has. `seen`: id -> next n."""
    if record_id not in seen:
        seen[record_id] = 1
        return record_id
    n = seen[record_id]
    while f"{record_id}#{n}" in seen:
        n += 1
    seen[record_id] = n + 1
    seen[f"{record_id}#{n}"] = 1
    return f"{record_id}#{n}"


def _batches(
    items: Iterator[tuple[int, ImageRecord]], size: int, max_bytes: int = BATCH_BYTES
) -> Iterator[list[tuple[int, ImageRecord]]]:
    """Batches of at most `size` records, cut early once the bytes they already hold in memory (tar
    members, parquet cells) pass `max_bytes`, so a batch of large items cannot multiply memory."""
    batch, held = [], 0
    for item in items:
        batch.append(item)
        held += len(item[1].data or b"")
        if len(batch) >= max(1, size) or held >= max_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch
