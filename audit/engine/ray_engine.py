"""The Ray engine (`audit scan SOURCE --engine ray`): the local engine's stages as Ray Data stages.

A source is cut into shards: one webdataset tar or parquet file each, or fixed-size chunks of a
folder's listing. `ShardScanner` actors read whole shards with the project's own readers (never
Ray's webdataset reader, whose default decoder unpickles `.pkl` and `torch.load`s `.pt` members),
then run the local engine's worker stage (`process_batch`: decode, pixel detectors, model-ready
pixels) on them; `EmbeddingActor`s run the `EmbeddingStage`. Models load once per actor.

The last stage's actors write the rows themselves, as parquet pieces
`OUT/parts/shard-NNNNNN-<piece>.parquet` (so `OUT` must be on a filesystem every node mounts), and
send the driver only a small notice per piece. When a shard's pieces add up to its rows, the driver
writes its commit marker `shard-NNNNNN.done` listing them; with `resume=True` committed shards are
skipped, as img2dataset does, and files no marker lists are deleted. At the end the parts stream
back a piece at a time in source order (positions and duplicate-id suffixes as the local engine
gives them) into `finish_scan`, as the local engine's rows do, so both engines write the same rows.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import tarfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.bank.kinds import NO_EMBEDDER
from audit.compare import load_baseline
from audit.detectors import build_embedding_detectors, build_pixel_detectors
from audit.engine.batch import init_worker, process_batch
from audit.engine.config import ScanConfig
from audit.engine.finish import finish_scan
from audit.engine.journal import JournalMismatch, set_aside
from audit.engine.local import EMBEDDINGS_DIR, Progress, id_scope, scan, source_records, unique_id
from audit.engine.out_folder import PARTS_DIR, OutFolder, check_out_folder, clear_folder
from audit.engine.result import ScanResult
from audit.report.outputs import results_schema
from audit.side_files import SideFileError, read_json
from audit.sources import ImageRecord, SourceError, SourceStats, display_name, is_dataset, iter_records, shard_files

RAY_MISSING = (
    "--engine ray needs Ray, which is not installed: pip install 'autophagy-audit[ray]' (or pip install 'ray[data]')"
)
PLAN_NAME = "plan.json"
# Images below which a Ray started for one scan on one machine is slower than the local engine:
# benchmarks/ray_scaling.py measured the break-even at about 180,000 small images on 2 cores.
LOCAL_BELOW = 100_000
FOLDER_SHARD_SIZE = 1000  # images per shard of a folder source
# Ray Data restarts a dead actor and retries its task without end (and its named parameters no longer
# set actor restarts): under memory pressure it kills and restarts workers forever. The actors count
# each task's starts in OUT/parts/attempts and refuse a task's 5th start; then the scan stops with the
# reason (ShardsFailed).
MAX_TASK_RETRIES = 3
ATTEMPTS_DIR = "attempts"
REFUSED = ".refused"  # the mark of a task refused a start, beside its counted starts
MAX_NAMED_SHARDS = 5
MAX_REASON_CHARS = 300
FLIGHT_COLUMNS = ("shard", "shard_rows", "prepared")  # travel with the rows between stages only
PIECE_ROWS = 10_000  # rows a ShardScanner holds before it writes them as one piece of its shard
NOTICE_SCHEMA = pa.schema(
    [
        ("shard", pa.int64()),
        ("first", pa.int64()),
        ("rows", pa.int64()),
        ("shard_rows", pa.int64()),
        ("part", pa.string()),
    ]
)


@dataclass(frozen=True)
class Shard:
    """A unit of work: a file (or hf: spec) read whole by `iter_records`, or a folder chunk."""

    name: str
    spec: str = ""
    records: str = ""  # JSON [[id, uri, path, error], ...] of a folder chunk, listed by the driver


def ray_scan(
    source: str,
    out: str | Path,
    *,
    config: ScanConfig | None = None,
    address: str | None = None,
    num_workers: int | None = None,
    batch_size: int = 16,
    resume: bool = False,
    progress: Progress | None = None,
    shard_size: int = FOLDER_SHARD_SIZE,
    overwrite: bool = False,
    baseline: str | Path | None = None,
    local_below: int = LOCAL_BELOW,
) -> ScanResult:
    """Scan `source` on a Ray cluster (started on the machine that runs the scan when `address` is None).

    When Ray would be started for this scan alone (no `address`, Ray not running in this process)
    and the source holds fewer than `local_below` images, the local engine scans it instead, with
    a warning: Ray's start-up costs more than it saves on one machine (docs/scaling.md).
    Same results and errors as `audit.engine.local.scan`; ValueError when Ray is missing.
    """
    ray = _import_ray()
    config = (config or ScanConfig()).resolved()
    build_pixel_detectors(config)  # validates watermark keys before any work
    if config.embedder == NO_EMBEDDER and config.needs_embeddings:
        raise ValueError(f"--embedder {NO_EMBEDDER} (a pHash bank) runs on the local engine only; drop --engine ray")
    out = Path(out)
    check_out_folder(out, resume, overwrite)
    earlier = load_baseline(baseline) if baseline else None
    stats = SourceStats()
    shards = plan_shards(source, config, shard_size, stats)
    small = _small_for_ray(ray, address, out, resume, shards, local_below)
    if small is not None:
        logging.getLogger(__name__).warning(
            f"about {small:,} images: scanned with the local engine, which is faster than starting Ray on one "
            f"machine below {local_below:,} images (pass --address to use a running Ray cluster)"
        )
        return scan(
            source,
            out,
            config=config,
            workers=num_workers,
            batch_size=batch_size,
            resume=resume,
            progress=progress,
            overwrite=overwrite,
            baseline=baseline,
        )
    with OutFolder(out, clear=False) as lock:  # one scan at a time
        identity = {"source": source, **config.as_dict(), "shards": [s.name for s in shards]}
        parts = Parts(out / PARTS_DIR, identity, resume, results_schema(config.detectors))  # refused: nothing changed
        lock.clear_results()  # old results removed as the scan starts
        if overwrite and not resume:  # the replaced scan's embedding cache goes with it
            clear_folder(out / EMBEDDINGS_DIR)
        stage = _embedding_stage(config, out / EMBEDDINGS_DIR)
        prepare = config.preprocess if stage is not None and stage.active else None
        try:
            todo = [i for i in range(len(shards)) if not parts.committed(i)]
            if progress and parts.rows_done:
                progress(parts.rows_done)
            if todo:
                try:
                    for notices in _pipeline(
                        ray, address, shards, todo, config, prepare, parts.folder, num_workers, batch_size
                    ):
                        rows = parts.take(notices)
                        if progress:
                            progress(rows)
                except ray.exceptions.RayError as e:  # after the bounded retries
                    reason = given_up(parts.folder / ATTEMPTS_DIR, shards) or e
                    raise ShardsFailed(
                        shards_failed(shards, [i for i in todo if not parts.committed(i)], reason)
                    ) from e
                parts.commit_empty(todo)
                parts.tidy()
                shutil.rmtree(parts.folder / ATTEMPTS_DIR, ignore_errors=True)
            return finish_scan(
                parts.ordered_batches(len(shards), stage),
                source,
                config,
                out,
                stage,
                stats,
                (str(baseline), earlier) if earlier else None,
            )
        finally:
            if stage is not None:
                stage.close()  # after the outputs: the vectors go into its cache as the parts are read


class ShardsFailed(RuntimeError):
    """Ray gave up on shards after its bounded retries; the finished shards are kept for --resume."""


def shards_failed(shards: list[Shard], unfinished: list[int], error: Exception) -> str:
    """One line: which shards did not finish, Ray's reason, and how to go on."""
    names = ", ".join(shards[i].name for i in unfinished[:MAX_NAMED_SHARDS])
    more = f" and {len(unfinished) - MAX_NAMED_SHARDS} more" if len(unfinished) > MAX_NAMED_SHARDS else ""
    reason = " ".join(str(error).split())[:MAX_REASON_CHARS] or type(error).__name__
    memory = (
        " (a worker ran out of memory: fewer --num-workers or a smaller --batch-size need less)"
        if "memory" in reason.lower()
        else ""
    )
    return (
        f"the Ray engine gave up on {len(unfinished)} shard(s) ({names}{more}) after at most {MAX_TASK_RETRIES} "
        f"retries each: {type(error).__name__}: {reason}{memory}. The finished shards are kept: rerun with "
        "--resume to scan the rest"
    )


class TooManyAttempts(RuntimeError):
    """A task was started MAX_TASK_RETRIES + 1 times and never finished (its worker died each time)."""


def note_attempt(folder: str, task: str) -> None:
    """Count one more start of `task`: an empty file per start, created exclusively, so that actors on
    any node count alike (OUT is on a filesystem they all mount). Raises TooManyAttempts instead of
    the start after the last retry."""
    for number in range(1, MAX_TASK_RETRIES + 2):
        try:
            os.close(os.open(os.path.join(folder, f"{task}.{number}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return
        except FileExistsError:
            continue
    Path(folder, f"{task}{REFUSED}").touch()
    raise TooManyAttempts(f"{task} was started {MAX_TASK_RETRIES + 1} times and its worker died each time")


def given_up(folder: Path, shards: list[Shard]) -> TooManyAttempts | None:
    """The error to report for the first task whose starts ran out (a shard's scan, or its embedding), if any."""
    refused = sorted(folder.glob(f"shard-*{REFUSED}"))
    if not refused:
        return None
    task = refused[0].name.removesuffix(REFUSED)
    what = "the embedding of " if "-embedding-" in task else ""
    return TooManyAttempts(
        f"{what}{shards[int(task[6:12])].name} was started {MAX_TASK_RETRIES + 1} times and its worker died each time"
    )


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    return ray


def _embedding_stage(config: ScanConfig, cache_dir: Path):
    """The driver's own stage: says whether embeddings run (weights present), holds the vectors the
    actors return for the summary and the embedding cache. It never embeds: the actors do."""
    if not config.needs_embeddings:
        return None
    from audit.embedding.stage import EmbeddingStage

    return EmbeddingStage(
        build_embedding_detectors(config), config.embedder, config.preprocess, cache_dir, device="cpu"
    )


# --- shards ------------------------------------------------------------------------------


def plan_shards(
    source: str, config: ScanConfig, shard_size: int = FOLDER_SHARD_SIZE, stats: SourceStats | None = None
) -> list[Shard]:
    """The shards of `source` in source order; raises SourceError for an unreadable source."""
    files = shard_files(source, config.allow_missing_shards)
    if files is not None or is_dataset(source):
        next(
            source_records(source, config, stats),
            None,
        )  # a bad source fails here, not in Ray
        return (
            [Shard(name=display_name(f), spec=os.path.abspath(f)) for f in files] if files else [Shard(source, source)]
        )
    listing = [
        [r.id, r.uri, r.path and os.path.abspath(r.path), r.error, r.root]
        for r in source_records(source, config, stats)
    ]
    return [
        Shard(name=f"{chunk[0][0]} .. {chunk[-1][0]} ({len(chunk)} items, {_digest(chunk)})", records=json.dumps(chunk))
        for chunk in (listing[i : i + shard_size] for i in range(0, len(listing), shard_size))
    ]


def _small_for_ray(ray, address: str | None, out: Path, resume: bool, shards: list[Shard], below: int) -> int | None:
    """The images counted when Ray would be started for this scan alone for fewer than `below` of them;
    else None (a cluster to join, Ray already running, a Ray scan to resume, or more or unknown images)."""
    if address is not None or ray.is_initialized() or (resume and (out / PARTS_DIR / PLAN_NAME).exists()):
        return None
    count = count_images(shards, below)
    return count if count is not None and count < below else None


def count_images(shards: list[Shard], limit: int) -> int | None:
    """The items of the shards, counted until `limit` is reached: a folder chunk's listing, a tar's
    regular members (captions and other side files counted too: never fewer than its images), a
    parquet file's rows; None when a shard cannot be counted (e.g. a Hugging Face dataset)."""
    total = 0
    for shard in shards:
        if total >= limit:
            break
        try:
            if shard.records:
                total += len(json.loads(shard.records))
            elif shard.spec.endswith(".tar"):
                with tarfile.open(shard.spec) as tar:
                    total += sum(1 for member in itertools.islice(tar, limit - total + 1) if member.isfile())
            elif shard.spec.endswith(".parquet"):
                total += pq.ParquetFile(shard.spec).metadata.num_rows
            else:
                return None
        except (OSError, tarfile.TarError, pa.ArrowException):
            return None  # the engine reports a broken shard; here it only means "not counted"
    return total


def _digest(chunk: list) -> str:
    return hashlib.sha256(json.dumps(chunk).encode()).hexdigest()[:12]


def shard_records(shard: dict, config: ScanConfig) -> Iterator[ImageRecord]:
    """The records of one shard, as the local engine reads them."""
    if shard["records"]:
        for rid, uri, path, error, root in json.loads(shard["records"]):
            yield ImageRecord(id=rid, uri=uri, path=path, error=error, pixel_limit=config.pixel_limit, root=root)
        return
    try:
        yield from iter_records(
            shard["spec"], config.pixel_limit, config.column, config.follow_links, paths_under=config.paths_under
        )
    except SourceError as e:  # e.g. a later parquet file without the image column: one error row, as locally
        name, uri = display_name(os.path.basename(shard["spec"])), display_name(shard["spec"])
        yield ImageRecord(
            id=name + "/", uri=uri, error=str(e), container=uri if uri.endswith((".tar", ".parquet")) else None
        )


# --- Ray Data stages -----------------------------------------------------------------------


def _connect(ray, address: str | None, cpus_needed: int) -> None:
    """Join the cluster at `address`, or start one here (with at least the CPUs the stages need)."""
    if not ray.is_initialized():
        cpus = None if address else max(os.cpu_count() or 1, cpus_needed)
        ray.init(
            address=address, num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
        )
    with warnings.catch_warnings():  # Ray's own context sets its deprecated fields as it is made: not ours to fix
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller shows one bar for the scan
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


def _pipeline(
    ray,
    address: str | None,
    shards: list[Shard],
    todo: list[int],
    config: ScanConfig,
    prepare: str | None,
    parts: Path,
    num_workers: int | None,
    batch_size: int,
) -> Iterator[pa.Table]:
    """The notices (`NOTICE_SCHEMA`) of the pieces the last stage writes into `parts`."""
    from ray.data import ActorPoolStrategy

    _connect(ray, address, (num_workers or 1) + (1 if prepare else 0))
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    embed_cpus = 1 if prepare and not gpus else 0
    workers = min(num_workers or max(1, cpus - embed_cpus), len(todo))  # a shard is read by one actor
    if workers + embed_cpus > cpus:
        raise ValueError(
            f"{workers} detector workers{' and 1 embedding worker' if embed_cpus else ''} need "
            f"{workers + embed_cpus} CPUs, but the Ray cluster has {cpus}; lower --num-workers"
        )
    items = [{"index": i, **asdict(shards[i])} for i in todo]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    folder = str(parts.resolve())
    attempts = os.path.join(folder, ATTEMPTS_DIR)
    shutil.rmtree(attempts, ignore_errors=True)  # each run counts afresh
    os.makedirs(attempts)
    scanner_args = (config, prepare, batch_size, None if prepare else folder, attempts)  # the last stage writes
    ds = ds.map_batches(
        ShardScanner,
        fn_constructor_args=scanner_args,
        batch_size=1,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    if prepare:
        ds = ds.map_batches(
            EmbeddingActor,
            fn_constructor_args=(config, folder, attempts),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=max(1, gpus)),
            num_gpus=1 if gpus else 0,
            num_cpus=embed_cpus,
        )
    return ds.iter_batches(batch_format="pyarrow", batch_size=None)


def part_schema(detectors, embeddings: bool) -> pa.Schema:
    """A committed shard: the results columns, and the raw embeddings when the scan computed them."""
    schema = results_schema(detectors)
    return schema.append(pa.field("embedding", pa.list_(pa.float32()))) if embeddings else schema


def flight_schema(detectors, prepared: bool = False, embeddings: bool = False) -> pa.Schema:
    """Rows between stages: a part's columns, the shard, its row count (on its last batch, -1
    before) and the model-ready pixels while they are needed."""
    extra = [("shard", pa.int64()), ("shard_rows", pa.int64())] + ([("prepared", pa.binary())] if prepared else [])
    schema = part_schema(detectors, embeddings)
    for name, kind in extra:
        schema = schema.append(pa.field(name, kind))
    return schema


class ShardScanner:
    """Ray actor: reads whole shards and runs the local engine's worker stage on them, batch by batch.
    As the last stage (`parts` given) it writes each shard as pieces of up to `piece_rows` rows."""

    piece_rows = PIECE_ROWS

    def __init__(
        self,
        config: ScanConfig,
        prepare: str | None,
        batch_size: int,
        parts: str | None = None,
        attempts: str | None = None,
    ):
        """attempts: the folder counting each shard's starts (`note_attempt`); None counts nothing."""
        init_worker(config, prepare)
        self.config = config
        self.batch_size = batch_size
        self.parts = parts
        self.attempts = attempts
        self.schema = flight_schema(config.detectors, prepared=prepare is not None)

    def __call__(self, shards: pa.Table) -> Iterator[pa.Table]:
        for shard in shards.to_pylist():
            if self.attempts:
                note_attempt(self.attempts, f"shard-{shard['index']:06d}")
            tables = self._scan(shard)
            yield from tables if self.parts is None else self._write(shard["index"], tables)

    def _scan(self, shard: dict) -> Iterator[pa.Table]:
        records = enumerate(shard_records(shard, self.config))  # positions within the shard
        batch, done = list(itertools.islice(records, self.batch_size)), 0
        while batch:
            following = list(itertools.islice(records, self.batch_size))
            rows, prepared = process_batch(batch)
            done += len(rows)
            for row in rows:
                row.update(
                    shard=shard["index"],
                    shard_rows=-1 if following else done,
                    prepared=prepared[row["seq"]].tobytes() if row["seq"] in prepared else None,
                )
            yield pa.Table.from_pylist(rows, schema=self.schema)
            batch = following

    def _write(self, index: int, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """A notice for each piece written; piece names are numbered, so a retried shard rewrites the same files."""
        held, number = [], 0
        for table in tables:
            held.append(table)
            if sum(t.num_rows for t in held) >= self.piece_rows:
                yield write_piece(self.parts, pa.concat_tables(held), piece_name(index, f"{number:06d}"))
                held, number = [], number + 1
        if held:
            yield write_piece(self.parts, pa.concat_tables(held), piece_name(index, f"{number:06d}"))


class _BatchVectors(dict):
    """An `EmbeddingStage` cache holding one batch's vectors: an actor lives for the whole scan,
    so it hands each batch's vectors on instead of keeping them all."""

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        self.update(zip(keys, vectors))


class EmbeddingActor:
    """Ray actor: the local engine's embedding stage (model loaded once), on batches of rows; it
    writes each batch as one piece per shard in it."""

    def __init__(self, config: ScanConfig, parts: str, attempts: str | None = None):
        from audit.embedding.stage import EmbeddingStage

        self.stage = EmbeddingStage(build_embedding_detectors(config), config.embedder, config.preprocess, None)
        if not self.stage.active:
            raise RuntimeError(f"the embedder's weights are missing on a Ray worker node: {self.stage.skipped}")
        self.stage.cache = _BatchVectors()
        self.parts = parts
        self.attempts = attempts
        self.columns = results_schema(config.detectors).names
        self.schema = flight_schema(config.detectors, embeddings=True)

    def __call__(self, table: pa.Table) -> pa.Table:
        if self.attempts:
            note_attempt(self.attempts, f"shard-{table['shard'][0].as_py():06d}-embedding-{table['seq'][0].as_py()}")
        table = self._embed(table)
        return pa.concat_tables(
            [
                write_piece(
                    self.parts, table.filter(pc.equal(table["shard"], index)), piece_name(index, uuid.uuid4().hex)
                )
                for index in pc.unique(table["shard"]).to_pylist()
            ]
        )

    def _embed(self, table: pa.Table) -> pa.Table:
        rows = table.select(self.columns).to_pylist()
        positions = [row["seq"] for row in rows]
        for i, row in enumerate(rows):  # a batch may mix shards, whose positions repeat
            row["seq"] = i
        prepared = {i: _unpack(p) for i, p in enumerate(table["prepared"].to_pylist()) if p is not None}
        self.stage.apply(rows, prepared)
        for i, (row, seq, shard, count) in enumerate(
            zip(rows, positions, table["shard"].to_pylist(), table["shard_rows"].to_pylist())
        ):
            vector = self.stage.vector(row["sha256"]) if i in prepared else None
            row.update(seq=seq, shard=shard, shard_rows=count, embedding=None if vector is None else vector.tolist())
        self.stage.cache.clear()
        return pa.Table.from_pylist(rows, schema=self.schema)


def _unpack(prepared: bytes) -> np.ndarray:
    from audit.embedding.embedder import IMAGE_SIZE

    return np.frombuffer(prepared, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, 3)


def piece_name(index: int, tag: str) -> str:
    return f"shard-{index:06d}-{tag}.parquet"


def write_piece(folder: str, table: pa.Table, name: str) -> pa.Table:
    """Write rows of one shard as `folder/name`, atomically; the notice the driver gets instead of them."""
    part = table.drop_columns([c for c in FLIGHT_COLUMNS if c in table.column_names])
    write_atomically(Path(folder) / name, lambda tmp: pq.write_table(part, tmp))
    notice = {
        "shard": table["shard"][0].as_py(),
        "first": pc.min(table["seq"]).as_py(),
        "rows": table.num_rows,
        "shard_rows": pc.max(table["shard_rows"]).as_py(),
        "part": name,
    }
    return pa.Table.from_pylist([notice], schema=NOTICE_SCHEMA)


# --- parts: the shards' results, committed one by one ----------------------------------------


class Parts:
    """The pieces of each shard, its commit marker `shard-NNNNNN.done` once all are written (rows, and
    the pieces as [file, first position, rows] in position order), and `plan.json`, the scan's
    identity (source, settings, shard names): a resume with another identity is refused."""

    def __init__(self, folder: Path, identity: dict, resume: bool, schema: pa.Schema):
        self.folder = folder
        self.schema = schema
        self._pieces: dict[int, dict[int, tuple[str, int]]] = {}  # shard -> first position -> (file, rows)
        self._expected: dict[int, int] = {}
        plan = folder / PLAN_NAME
        if resume and os.path.lexists(plan):
            try:
                found = read_json(plan)  # a regular file of bounded size: a FIFO is refused, never waited on
            except SideFileError as e:
                raise JournalMismatch(f"{e}; scan into another --out, or start anew with --overwrite") from None
            if found != identity:
                raise JournalMismatch(
                    f"{folder} was written by a scan with other settings or other shards; resume "
                    "with the same source and options, or scan into another --out"
                )
            self._check_markers()
            self.tidy()
        else:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            write_atomically(plan, lambda p: p.write_text(json.dumps(identity) + "\n"))

    def _path(self, index: int, suffix: str) -> Path:
        return self.folder / f"shard-{index:06d}{suffix}"

    def committed(self, index: int) -> bool:
        return self._path(index, ".done").exists()

    def _check_markers(self) -> None:
        """Before a resume: a commit marker that is not a regular file of the expected fields, or whose
        pieces are missing or do not add up to its rows, is set aside (`.rejected-N`): its shard is scanned again."""
        for path in sorted(self.folder.glob("shard-*.done")):
            try:
                sound = self._pieces_present(self._marker(path))
            except (SideFileError, KeyError, TypeError, ValueError):
                sound = False
            if not sound:
                set_aside(path)

    def _pieces_present(self, done: dict) -> bool:
        pieces = done["parts"]
        return (
            isinstance(done["rows"], int)
            and all(
                isinstance(piece, list)
                and len(piece) == 3
                and isinstance(piece[0], str)
                and "/" not in piece[0]
                and all(isinstance(n, int) for n in piece[1:])
                and (self.folder / piece[0]).is_file()
                and not (self.folder / piece[0]).is_symlink()
                for piece in pieces
            )
            and sum(piece[2] for piece in pieces) == done["rows"]
        )

    @staticmethod
    def _marker(path: Path) -> dict:
        done = read_json(path)
        old = [[f"{path.stem}.parquet", 0, done["rows"]]] if done["rows"] else []  # a marker of an older version
        return {"parts": old, **done}

    @property
    def rows_done(self) -> int:
        return sum(self._marker(p)["rows"] for p in self.folder.glob("shard-*.done"))

    def tidy(self) -> None:
        """Delete the files no commit marker lists: uncommitted shards' and a retried task's leftovers."""
        listed = {piece[0] for p in self.folder.glob("shard-*.done") for piece in self._marker(p)["parts"]}
        for path in itertools.chain(self.folder.glob("shard-*.parquet"), self.folder.glob(".shard-*")):
            if path.name not in listed:
                path.unlink(missing_ok=True)

    def take(self, notices: pa.Table) -> int:
        """Note the pieces the actors wrote; commit every shard whose pieces add up to its rows.
        Returns the rows noted."""
        for notice in notices.to_pylist():
            index = notice["shard"]
            if self.committed(index):
                continue  # a retried task's repeat
            pieces = self._pieces.setdefault(index, {})
            pieces[notice["first"]] = (notice["part"], notice["rows"])  # a repeated piece replaces itself
            if notice["shard_rows"] >= 0:
                self._expected[index] = notice["shard_rows"]
            if sum(rows for _, rows in pieces.values()) == self._expected.get(index):
                self._commit(index, [[pieces[first][0], first, pieces[first][1]] for first in sorted(pieces)])
                del self._pieces[index], self._expected[index]
        return sum(notices["rows"].to_pylist())

    def _commit(self, index: int, pieces: list[list]) -> None:
        for name, _, _ in pieces:
            if not (self.folder / name).exists():
                raise RuntimeError(
                    f"{self.folder / name}, written by a Ray worker, is not on this machine: --out must "
                    "be on a filesystem every node of the cluster mounts"
                )
        marker = json.dumps({"rows": sum(rows for _, _, rows in pieces), "parts": pieces}) + "\n"
        write_atomically(self._path(index, ".done"), lambda tmp: tmp.write_text(marker))

    def commit_empty(self, todo: list[int]) -> None:
        """After a complete run: shards that sent no rows hold no images."""
        if self._pieces:
            raise RuntimeError(f"shards {sorted(self._pieces)} came back with missing or repeated rows")
        for index in todo:
            if not self.committed(index):
                self._commit(index, [])

    def ordered_batches(self, count: int, stage) -> Iterator[pa.Table]:
        """The rows in source order, a piece at a time: positions over the whole source and
        duplicate-id suffixes as the local engine gives them. Embeddings go into `stage`'s cache on the way."""
        ids, offset = _UniqueIds(), 0
        for index in range(count):
            done = self._marker(self._path(index, ".done"))
            for table in self._shard_tables(done["parts"]):
                if "embedding" in table.column_names:
                    self._keep_vectors(table, stage)
                table = table.select(self.schema.names).cast(self.schema)
                table = table.set_column(
                    table.schema.get_field_index("seq"), self.schema.field("seq"), pc.add(table["seq"], offset)
                )
                unique = [ids(rid, box) for rid, box in zip(table["id"].to_pylist(), table["container"].to_pylist())]
                table = table.set_column(
                    table.schema.get_field_index("id"), self.schema.field("id"), pa.array(unique, pa.string())
                )
                yield table
            offset += done["rows"]

    def _shard_tables(self, pieces: list[list]) -> Iterator[pa.Table]:
        """A shard's rows in order: piece by piece when the pieces hold consecutive positions (always
        but for rows Ray reordered between stages), else the whole shard at once."""
        starts = list(itertools.accumulate((rows for _, _, rows in pieces), initial=0))[:-1]
        if [first for _, first, _ in pieces] == starts:
            for name, _, _ in pieces:
                yield pq.read_table(self.folder / name).sort_by("seq")
        elif pieces:
            yield pa.concat_tables([pq.read_table(self.folder / name) for name, _, _ in pieces]).sort_by("seq")

    @staticmethod
    def _keep_vectors(table: pa.Table, stage) -> None:
        embedded = [
            (sha, v) for sha, v in zip(table["sha256"].to_pylist(), table["embedding"].to_pylist()) if v is not None
        ]
        if embedded and stage is not None:
            stage.cache.put([sha for sha, _ in embedded], np.asarray([v for _, v in embedded], dtype=np.float32))


class _UniqueIds:
    """The local engine's duplicate-id suffixes (`unique_id`), remembered within one id scope
    (`id_scope`: a tar shard, a parquet file, a folder), as `local._numbered` does."""

    def __init__(self):
        self.scope, self.seen = None, {}

    def __call__(self, record_id: str, container: str | None) -> str:
        scope = id_scope(record_id, container)
        if scope != self.scope:
            self.scope, self.seen = scope, {}
        return unique_id(record_id, self.seen)
