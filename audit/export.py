"""`audit export OUT`: act on a scan. Lists of the items to drop (or keep) — their paths or URLs
where known, else their ids — and, for webdataset and parquet sources, clean copies of the shards
without the dropped samples, written as a stream with the same names and member order."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.atomic import write_atomically
from audit.sources.record import display_name

DROP_RULES = ("hard", "flagged")  # drop items with hard evidence, or every flagged item
ROWS_PER_BATCH = 4096


class ExportError(ValueError):
    """The scan folder or the request cannot be exported (a usage error)."""


def load_rows(out: str | Path) -> pa.Table:
    """The columns of OUT/results.parquet that exporting needs."""
    path = Path(out) / "results.parquet"
    if not path.is_file():
        raise ExportError(f"no results.parquet in {out}: export needs the output folder of a finished scan")
    columns = [c for c in ("id", "uri", "status", "flagged", "hard_evidence", "url") if c in pq.read_schema(path).names]
    return pq.read_table(path, columns=columns)


def dropped_mask(rows: pa.Table, drop: str) -> list[bool]:
    """Which rows the rule drops: `hard` (hard evidence) or `flagged` (any detector said synthetic)."""
    if drop not in DROP_RULES:
        raise ExportError(f"--drop must be one of {', '.join(DROP_RULES)}, not {drop!r}")
    column = "hard_evidence" if drop == "hard" else "flagged"
    return [bool(v) for v in rows.column(column).to_pylist()]


def item_names(rows: pa.Table) -> list[str]:
    """Per row what a list names: its URL when the dataset gave one, a file path for folder items,
    else the row id (a tar member, a parquet row, a dataset index)."""
    urls = rows.column("url").to_pylist() if "url" in rows.column_names else [None] * rows.num_rows
    return [url or (uri if "#" not in uri and os.path.isabs(uri) else rid)
            for rid, uri, url in zip(rows.column("id").to_pylist(), rows.column("uri").to_pylist(), urls)]


def write_list(out: str | Path, drop: str, target: str | Path, keep: bool = False) -> int:
    """Write the dropped items (or with `keep` the others), one per line; returns how many."""
    rows = load_rows(out)
    mask = dropped_mask(rows, drop)
    names = [name for name, dropped in zip(item_names(rows), mask) if dropped != keep]
    write_atomically(Path(target), lambda p: p.write_text("".join(f"{n}\n" for n in names), encoding="utf-8"))
    return len(names)


def write_clean_shards(out: str | Path, drop: str, target: str | Path) -> dict:
    """Copies of the scanned tar or parquet files without the dropped samples, into `target`, with
    the same file names; returns {file: (kept, dropped)}. A dropped tar image takes its whole
    webdataset sample (every member with the same key) with it."""
    rows = load_rows(out)
    mask = dropped_mask(rows, drop)
    by_file: dict[str, set[str]] = {}
    for uri, dropped in zip(rows.column("uri").to_pylist(), mask):
        path, sep, inner = uri.partition("#")
        if not path.endswith((".tar", ".parquet")):
            raise ExportError("clean shards can be written for webdataset (.tar) and parquet sources only; "
                              f"this scan holds {uri!r}")
        by_file.setdefault(path, set())
        if dropped and sep:
            by_file[path].add(inner)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    return {os.path.basename(path): (_clean_tar if path.endswith(".tar") else _clean_parquet)(path, dropped, target)
            for path, dropped in by_file.items()}


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
