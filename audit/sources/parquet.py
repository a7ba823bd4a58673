"""Parquet sources: one record per row of the image column, streamed in small batches.

The image column holds raw bytes (binary), a Hugging Face Image struct `{bytes, path}`, or
file paths relative to the parquet file's folder (or to `paths_under`, the folder they were
written relative to; a path must lead to a file inside that folder). It is `column` when given;
otherwise the first binary or `{bytes, ...}` struct column; otherwise the first string column
named like a path (`path`, `file_name`, `image_path`, `url`, ...). Dictionary-encoded columns
(pandas categoricals, `pyarrow` dictionary arrays) count as their values' type. Ids are `<file name>/<key>` when the file has an `id`, `key` or `__key__` column, else
`<file name>/<cell's file name>` for a `{bytes, path}` cell that records one, else `<file name>/<row
index>`. Row groups are read a few rows at a time, as many as their metadata says fit in READ_BYTES;
a row group that would expand like a decompression bomb is one error record `<file name>/row group N`
and is never decompressed (the rows after it keep their indices). The url, key and caption columns of img2dataset-style files (`url`, `key`, `caption`, and
the like; see sample_meta) are carried into the rows. A file that
cannot be read becomes one error record `<file name>/` and the next file is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from audit.sources.decode import MAX_FILE_BYTES
from audit.sources.parquet_pages import PageHeaderError, chunk_sizes
from audit.sources.record import ImageRecord, SourceError, display_name, too_large
from audit.sources.sample_meta import NAMES, from_mapping

BATCH_ROWS = 64  # rows per read at most: image cells can be megabytes each
READ_BYTES = 64 * 1024 * 1024  # fewer rows per read when the row group's cells are larger (by its metadata)
ROW_GROUP_BYTES = MAX_FILE_BYTES  # a row group expanding past this ...
MAX_RATIO = 10  # ... at more than this many times its stored size is a decompression bomb, never read
ID_COLUMNS = ("id", "key", "__key__")
PATH_COLUMN_NAMES = {
    "path",
    "file",
    "filename",
    "file_name",
    "filepath",
    "file_path",
    "image",
    "img",
    "image_path",
    "img_path",
    "image_file",
    "image_filename",
    "url",
    "image_url",
    "uri",
}


def iter_parquet(paths: list[str], column: str | None, paths_under: str | None = None) -> Iterator[ImageRecord]:
    """Records of every row of every file, in order.

    No usable image column in the first readable file raises `SourceError`; in a later
    file it becomes that file's error record.
    """
    column_found = False
    for path in paths:
        name = display_name(os.path.basename(path))
        uri = display_name(os.path.abspath(path))
        try:
            pfile = pq.ParquetFile(path)
            image_column = pick_column(pfile.schema_arrow, column)
            column_found = True
            for record in _iter_rows(pfile, image_column, path, name, uri, paths_under):
                record.container = uri  # the uri's file part, kept apart from it
                yield record
        except SourceError as e:
            if not column_found:
                raise
            yield ImageRecord(id=name + "/", uri=uri, error=str(e), container=uri)
        except (OSError, pa.ArrowException) as e:
            yield ImageRecord(id=name + "/", uri=uri, error=f"unreadable parquet file: {e}", container=uri)


def _iter_rows(
    pfile: pq.ParquetFile, image_column: str, path: str, name: str, uri: str, paths_under: str | None
) -> Iterator[ImageRecord]:
    schema = pfile.schema_arrow
    id_column = next((c for c in ID_COLUMNS if c in schema.names and c != image_column), None)
    meta = meta_columns(schema)
    columns = list(dict.fromkeys([image_column, *([id_column] if id_column else []), *meta.values()]))
    base_dir = paths_under or os.path.dirname(os.path.abspath(path))
    row = 0
    for group in range(pfile.num_row_groups):
        batch_rows, error = read_plan(pfile.metadata, group, columns, path)
        if error:
            yield ImageRecord(id=f"{name}/row group {group}", uri=f"{uri}#{row}", error=error)
            row += pfile.metadata.row_group(group).num_rows
            continue
        for batch in pfile.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
            table = {c: batch.column(c).to_pylist() for c in columns}
            for i, value in enumerate(table[image_column]):
                key = table[id_column][i] if id_column else None
                label = _key_text(key) if key is not None else cell_path(value) or str(row)
                record = cell_record(value, f"{name}/{label}", f"{uri}#{row}", base_dir)
                record.add_meta(from_mapping({field: table[column][i] for field, column in meta.items()}))
                yield record
                row += 1


def read_plan(
    metadata: pq.FileMetaData, group: int, columns: list[str], path: str | None = None
) -> tuple[int, str | None]:
    """(rows per read, None) for a row group, from its column chunks' sizes, before anything is
    decompressed: reads of about READ_BYTES; or (0, reason) for a row group whose columns would expand
    past ROW_GROUP_BYTES at more than MAX_RATIO times their stored size (a decompression bomb), which
    is never read. The sizes are the metadata's, and with `path` the larger that the chunks' page
    headers declare (Arrow allocates by those; a file's metadata can understate them)."""
    meta = metadata.row_group(group)
    chunks = [
        meta.column(j)
        for j in range(meta.num_columns)
        if any(meta.column(j).path_in_schema == c or meta.column(j).path_in_schema.startswith(c + ".") for c in columns)
    ]
    expanded = sum(max(0, c.total_uncompressed_size) for c in chunks)
    stored = sum(max(0, c.total_compressed_size) for c in chunks)
    if path is not None:
        try:
            by_pages = _page_sizes(path, chunks)
        except (OSError, PageHeaderError) as e:
            return 0, f"unreadable parquet row group {group}: page headers: {e}; not read"
        expanded, stored = max(expanded, by_pages[0]), min(stored, by_pages[1])
    if expanded > ROW_GROUP_BYTES and expanded > MAX_RATIO * max(stored, 1):
        return 0, (
            f"decompression bomb: parquet row group {group} ({meta.num_rows} rows) expands to {expanded} "
            f"bytes from {stored} (over {ROW_GROUP_BYTES} bytes at more than {MAX_RATIO}x); not read"
        )
    per_row = expanded / max(1, meta.num_rows)
    return max(1, min(BATCH_ROWS, int(READ_BYTES // max(per_row, 1)))), None


def _page_sizes(path: str, chunks: list) -> tuple[int, int]:
    """(expanded, stored) of the column chunks by their page headers."""
    expanded = stored = 0
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for chunk in chunks:
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            pages = chunk_sizes(f, start or 0, max(0, chunk.total_compressed_size), chunk.num_values, size)
            expanded, stored = expanded + pages[0], stored + pages[1]
    return expanded, stored


def meta_columns(schema: pa.Schema) -> dict[str, str]:
    """field (url, key, caption) -> the string or integer column holding it (img2dataset: url, key, caption)."""
    usable = {f.name for f in schema if _is_string(f.type) or pa.types.is_integer(_plain(f.type))}
    found = {field: next((n for n in names if n in usable), None) for field, names in NAMES.items()}
    return {field: column for field, column in found.items() if column}


def cell_path(value: object) -> str | None:
    """The file name a `{bytes, path}` cell records (Hugging Face Image), or None."""
    path = value.get("path") if isinstance(value, dict) else None
    return os.path.basename(path) if isinstance(path, str) and path.strip() else None


def _key_text(key: object) -> str:
    return key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else str(key)


def pick_column(schema: pa.Schema, column: str | None) -> str:
    """The image column of a table: `column` if given (checked), else auto-detected."""
    names = ", ".join(schema.names) or "(none)"
    if column is not None:
        if column not in schema.names:
            raise SourceError(f"column '{column}' not found; columns: {names}")
        column_type = schema.field(column).type
        if not (_is_bytes(column_type) or _is_image_struct(column_type) or _is_string(column_type)):
            raise SourceError(
                f"column '{column}' has type {column_type}; expected bytes, a {{bytes, path}} struct or file paths"
            )
        return column
    found = bytes_column(schema)
    if found is not None:
        return found
    for f in schema:
        if _is_string(f.type) and f.name.lower() in PATH_COLUMN_NAMES:
            return f.name
    raise SourceError(
        f"no image column (bytes, {{bytes, path}} struct or file paths) among columns: {names}; "
        "choose one with --column"
    )


def bytes_column(schema: pa.Schema) -> str | None:
    """The first column of image bytes (binary, or a `{bytes, ...}` struct), or None."""
    return next((f.name for f in schema if _is_bytes(f.type) or _is_image_struct(f.type)), None)


def cell_record(value: object, rid: str, uri: str, base_dir: str, root: str | None = None) -> ImageRecord:
    """A record for one cell: bytes, a `{bytes, path}` dict, or a file path (relative to base_dir),
    which must lead to a file inside `root` (default: base_dir)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if not value:
        return ImageRecord(id=rid, uri=uri, error="empty cell")
    if isinstance(value, bytes):
        error = too_large(len(value))
        return ImageRecord(id=rid, uri=uri, error=error) if error else ImageRecord(id=rid, uri=uri, data=value)
    if not isinstance(value, str):
        return ImageRecord(id=rid, uri=uri, error=f"unsupported cell type: {type(value).__name__}")
    if "://" in value:
        return ImageRecord(id=rid, uri=value, error="cell is a URL; remote images are not downloaded")
    path = os.path.join(base_dir, value)
    return ImageRecord(id=rid, uri=display_name(os.path.abspath(path)), path=path, root=root or base_dir)


def _plain(t: pa.DataType) -> pa.DataType:
    """A dictionary-encoded type's value type; any other type as it is."""
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_bytes(t: pa.DataType) -> bool:
    t = _plain(t)
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _is_string(t: pa.DataType) -> bool:
    t = _plain(t)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_image_struct(t: pa.DataType) -> bool:
    t = _plain(t)
    return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0 and _is_bytes(t.field("bytes").type)
