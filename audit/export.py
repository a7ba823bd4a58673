"""`audit export OUT`: act on a scan. Lists of the items to drop (or keep) — their paths or URLs
where known, else their ids — and, for webdataset and parquet sources, clean copies of the shards
without the dropped samples, written as a stream with the same names and member order."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.report.outputs import RESULTS_FILE
from audit.sources.record import display_name

DROP_RULES = ("hard", "flagged")  # drop items with hard evidence, or every flagged item
ROWS_PER_BATCH = 4096


class ExportError(ValueError):
    """The scan folder or the request cannot be exported (a usage error)."""


def row_batches(out: str | Path, drop: str) -> Iterator[tuple[list[str], list[str], list[str | None], list[bool]]]:
    """OUT/results.parquet batch by batch, as (ids, uris, urls, dropped by the rule): `hard` drops
    items with hard evidence, `flagged` every item any detector said is synthetic."""
    if drop not in DROP_RULES:
        raise ExportError(f"--drop must be one of {', '.join(DROP_RULES)}, not {drop!r}")
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        raise ExportError(f"no {RESULTS_FILE} in {out}: export needs the output folder of a finished scan")
    rule = "hard_evidence" if drop == "hard" else "flagged"
    names = pq.read_schema(path).names
    for batch in pq.ParquetFile(path).iter_batches(ROWS_PER_BATCH, columns=[c for c in ("id", "uri", "url", rule)
                                                                             if c in names]):
        urls = batch.column("url").to_pylist() if "url" in batch.schema.names else [None] * batch.num_rows
        yield (batch.column("id").to_pylist(), batch.column("uri").to_pylist(), urls,
               [bool(v) for v in batch.column(rule).to_pylist()])


def item_name(rid: str, uri: str, url: str | None) -> str:
    """What a list names: the item's URL when the dataset gave one, a file path for folder items,
    else the row id (a tar member, a parquet row, a dataset index)."""
    return url or (uri if "#" not in uri and os.path.isabs(uri) else rid)


def write_list(out: str | Path, drop: str, target: str | Path, keep: bool = False) -> int:
    """Write the dropped items (or with `keep` the others), one per line; returns how many."""
    written = 0

    def write(path: Path) -> None:
        nonlocal written
        with open(path, "w", encoding="utf-8") as f:
            for ids, uris, urls, dropped in row_batches(out, drop):
                names = [item_name(*item) for item, d in zip(zip(ids, uris, urls), dropped) if d != keep]
                f.writelines(f"{n}\n" for n in names)
                written += len(names)

    write_atomically(Path(target), write)
    return written


def write_clean_shards(out: str | Path, drop: str, target: str | Path) -> dict:
    """Copies of the scanned tar or parquet files without the dropped samples, into `target`, with
    the same file names; returns {file: (kept, dropped)}. A dropped tar image takes its whole
    webdataset sample (every member with the same key) with it. A file's rows are contiguous in
    results.parquet, so each file is copied once its rows are read: memory holds one file's drops."""
    target = Path(target)
    done, current, dropped_here = {}, None, set()
    for _, uris, _, dropped in row_batches(out, drop):
        for uri, d in zip(uris, dropped):
            path, sep, inner = uri.partition("#")
            if not path.endswith((".tar", ".parquet")):
                raise ExportError("clean shards can be written for webdataset (.tar) and parquet sources only; "
                                  f"this scan holds {uri!r}")
            if path != current:
                if os.path.basename(path) in done:
                    raise ExportError(f"{path} (or a file of the same name) appears twice in the scan: its clean copy "
                                      "would be written twice")
                if current is not None:
                    done[os.path.basename(current)] = _clean(current, dropped_here, target)
                current, dropped_here = path, set()
            if d and sep:
                dropped_here.add(inner)
    if current is not None:
        done[os.path.basename(current)] = _clean(current, dropped_here, target)
    return done


def _clean(path: str, dropped: set[str], target: Path) -> tuple[int, int]:
    target.mkdir(parents=True, exist_ok=True)
    return (_clean_tar if path.endswith(".tar") else _clean_parquet)(path, dropped, target)


def sample_key(member: str) -> str:
    """The webdataset key of a member: its path up to the first dot of the file name."""
    folder, _, name = member.rpartition("/")
    return f"{folder}/{name.split('.', 1)[0]}" if folder else name.split(".", 1)[0]


def _clean_tar(path: str, dropped_members: set[str], target: Path) -> tuple[int, int]:
    dropped_keys = {sample_key(m) for m in dropped_members}
    kept = removed = 0

    def copy(tmp: Path) -> None:
        nonlocal kept, removed
        with tarfile.open(path, "r:*") as source, tarfile.open(tmp, "w", format=source.format) as clean:
            for member in source:
                if sample_key(display_name(member.name)) in dropped_keys:
                    removed += 1
                    continue
                clean.addfile(member, source.extractfile(member) if member.isfile() else None)
                kept += 1

    write_atomically(target / os.path.basename(path), copy)
    return kept, removed


def _clean_parquet(path: str, dropped_rows: set[str], target: Path) -> tuple[int, int]:
    drop = {int(r) for r in dropped_rows}
    source = pq.ParquetFile(path)
    kept = 0

    def copy(tmp: Path) -> None:
        nonlocal kept
        start = 0
        with pq.ParquetWriter(tmp, source.schema_arrow) as writer:
            for batch in source.iter_batches(batch_size=ROWS_PER_BATCH):
                index = pa.array(range(start, start + batch.num_rows))
                keep = pc.invert(pc.is_in(index, value_set=pa.array(sorted(drop), pa.int64())))
                table = pa.Table.from_batches([batch]).filter(keep)
                writer.write_table(table)
                kept += table.num_rows
                start += batch.num_rows

    write_atomically(target / os.path.basename(path), copy)
    return kept, len(drop)
