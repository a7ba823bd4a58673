"""`audit export OUT`: act on a scan. Lists of the items to drop (or keep) — their paths or URLs
where known, else their ids — and, for webdataset and parquet sources, clean copies of the shards
without the dropped samples, written as a stream with the same names and member order.

Export re-publishes only what the scan read as safe: a clean shard holds only the tar members the
scan would read (regular files with safe names, see `sources.tar.member_refusal`), and the file an
item came from is the `container` column the scan recorded, never a guess from where a `#` falls in
its uri (a folder may be named `evil.tar#x`)."""

from __future__ import annotations

import os
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.report.outputs import RESULTS_FILE
from audit.sources.record import display_name
from audit.sources.tar import member_refusal, sample_key

DROP_RULES = ("hard", "flagged")  # drop items with hard evidence, or every flagged item
ROWS_PER_BATCH = 4096
STDOUT = "-"  # --to - writes the list to standard output


class ExportError(ValueError):
    """The scan folder or the request cannot be exported (a usage error)."""


@dataclass
class Rows:
    """One batch of results.parquet: ids, uris, urls, containers (None for a results file written
    before the scan recorded them) and whether the rule drops each row."""

    ids: list[str]
    uris: list[str]
    urls: list[str | None]
    containers: list[str | None] | None
    dropped: list[bool]


def row_batches(out: str | Path, drop: str) -> Iterator[Rows]:
    """OUT/results.parquet batch by batch: `hard` drops items with hard evidence, `flagged` every
    item any detector said is synthetic."""
    if drop not in DROP_RULES:
        raise ExportError(f"--drop must be one of {', '.join(DROP_RULES)}, not {drop!r}")
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        raise ExportError(f"no {RESULTS_FILE} in {out}: export needs the output folder of a finished scan")
    rule = "hard_evidence" if drop == "hard" else "flagged"
    names = pq.read_schema(path).names
    columns = [c for c in ("id", "uri", "url", "container", rule) if c in names]
    for batch in pq.ParquetFile(path).iter_batches(ROWS_PER_BATCH, columns=columns):
        column = {c: batch.column(c).to_pylist() for c in columns}
        yield Rows(
            column["id"],
            column["uri"],
            column.get("url", [None] * batch.num_rows),
            column.get("container"),
            [bool(v) for v in column[rule]],
        )


def item_name(rid: str, uri: str, url: str | None, container: str | None = None, legacy: bool = False) -> str:
    """What a list names: the item's URL when the dataset gave one, a file path for folder items,
    else the row id (a tar member, a parquet row, a dataset index). `legacy`: the results file has
    no container column (a file path is then only named when its uri holds no `#`)."""
    in_file = container is None and not (legacy and "#" in uri)
    return url or (uri if in_file and os.path.isabs(uri) else rid)


def listed_names(out: str | Path, drop: str, keep: bool = False) -> Iterator[str]:
    """The names of the dropped items (or with `keep` the others), in results order."""
    for rows in row_batches(out, drop):
        containers = rows.containers or [None] * len(rows.ids)
        for rid, uri, url, container, d in zip(rows.ids, rows.uris, rows.urls, containers, rows.dropped):
            if d != keep:
                yield item_name(rid, uri, url, container, legacy=rows.containers is None)


def write_list(out: str | Path, drop: str, target: str | Path, keep: bool = False) -> int:
    """Write the dropped items (or with `keep` the others), one per line, to the file `target` or
    with `-` to standard output; returns how many."""
    written = 0

    def write_to(f) -> None:
        nonlocal written
        for name in listed_names(out, drop, keep):
            f.write(f"{name}\n")
            written += 1

    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            write_to(f)

    if str(target) == STDOUT:
        write_to(sys.stdout)
        sys.stdout.flush()
    else:
        write_atomically(Path(target), write)
    return written


@dataclass
class ShardCopy:
    """What a clean copy holds and left out: samples and members (a parquet row is one of each),
    and tar members the scan refused (unsafe names, links, devices, pickles), never copied."""

    kept_samples: int = 0
    kept_members: int = 0
    dropped_samples: int = 0
    dropped_members: int = 0
    unsafe_members: int = 0

    def describe(self) -> str:
        """`2 samples (4 members) kept, 1 sample (2 members) dropped[, N unsafe members left out]`."""
        text = (
            f"{_samples(self.kept_samples, self.kept_members)} kept, "
            f"{_samples(self.dropped_samples, self.dropped_members)} dropped"
        )
        if self.unsafe_members:
            text += f", {self.unsafe_members} unsafe member{'s' * (self.unsafe_members != 1)} left out"
        return text


def _samples(samples: int, members: int) -> str:
    return f"{samples} sample{'s' * (samples != 1)} ({members} member{'s' * (members != 1)})"


def item_in_container(uri: str, container: str | None) -> tuple[str, str | None]:
    """(the tar or parquet file of a row, the member or row inside it or None for the file itself)."""
    if container is None or not container.endswith((".tar", ".parquet")):
        raise ExportError(
            f"clean shards can be written for webdataset (.tar) and parquet sources only; this scan holds {uri!r}"
        )
    return container, uri[len(container) + 1 :] if uri.startswith(container + "#") else None


def write_clean_shards(out: str | Path, drop: str, target: str | Path) -> dict[str, ShardCopy]:
    """Copies of the scanned tar or parquet files without the dropped samples, into `target`, with
    the same file names; returns {file: ShardCopy}. A dropped tar image takes its whole webdataset
    sample (every member with the same key) with it. A file's rows are contiguous in
    results.parquet, so each file is copied once its rows are read: memory holds one file's drops."""
    target = Path(target)
    done, current, dropped_here = {}, None, set()
    for rows in row_batches(out, drop):
        if rows.containers is None:
            raise ExportError(
                f"{RESULTS_FILE} in {out} does not record which file each item came from "
                "(an older scan); scan again to write clean shards"
            )
        for uri, container, d in zip(rows.uris, rows.containers, rows.dropped):
            path, inner = item_in_container(uri, container)
            if path != current:
                if os.path.basename(path) in done:
                    raise ExportError(
                        f"{path} (or a file of the same name) appears twice in the scan: its clean copy "
                        "would be written twice"
                    )
                if current is not None:
                    done[os.path.basename(current)] = _clean(current, dropped_here, target)
                current, dropped_here = path, set()
            if d and inner is not None:
                dropped_here.add(inner)
    if current is not None:
        done[os.path.basename(current)] = _clean(current, dropped_here, target)
    return done


def _clean(path: str, dropped: set[str], target: Path) -> ShardCopy:
    target.mkdir(parents=True, exist_ok=True)
    return (_clean_tar if path.endswith(".tar") else _clean_parquet)(path, dropped, target)


def _clean_tar(path: str, dropped_members: set[str], target: Path) -> ShardCopy:
    """Copy the members the scan reads as safe regular files, leaving out the dropped samples."""
    dropped_keys = {sample_key(m) for m in dropped_members}
    counts = ShardCopy()
    kept_keys, removed_keys = set(), set()

    def copy(tmp: Path) -> None:
        with tarfile.open(path, "r:*") as source, tarfile.open(tmp, "w", format=source.format) as clean:
            for member in source:
                if member_refusal(member):
                    counts.unsafe_members += not member.isdir()
                    continue
                key = sample_key(display_name(member.name))
                if key in dropped_keys:
                    counts.dropped_members += 1
                    removed_keys.add(key)
                    continue
                clean.addfile(member, source.extractfile(member))
                counts.kept_members += 1
                kept_keys.add(key)

    write_atomically(target / os.path.basename(path), copy)
    counts.kept_samples, counts.dropped_samples = len(kept_keys), len(removed_keys)
    return counts


def _clean_parquet(path: str, dropped_rows: set[str], target: Path) -> ShardCopy:
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
    return ShardCopy(kept, kept, len(drop), len(drop))
