"""Parquet sources: one record per row of the image column, streamed in small batches.

The image column holds raw bytes (binary), a Hugging Face Image struct `{bytes, path}`, or
file paths relative to the parquet file's folder. It is `column` when given; otherwise the
first binary or `{bytes, ...}` struct column; otherwise the first string column named like
a path (`path`, `file_name`, `image_path`, `url`, ...). Ids are `<file name>/<row index>`,
or `<file name>/<key>` when the file has an `id`, `key` or `__key__` column. A file that
cannot be read becomes one error record `<file name>/` and the next file is read.
"""
from __future__ import annotations

import os
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from audit.sources.record import ImageRecord, SourceError, display_name

BATCH_ROWS = 64  # rows per read: image cells can be megabytes each
ID_COLUMNS = ("id", "key", "__key__")
PATH_COLUMN_NAMES = {
    "path", "file", "filename", "file_name", "filepath", "file_path", "image", "img",
    "image_path", "img_path", "image_file", "image_filename", "url", "image_url", "uri",
}


def iter_parquet(paths: list[str], column: str | None) -> Iterator[ImageRecord]:
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
            yield from _iter_rows(pfile, image_column, path, name, uri)
        except SourceError as e:
            if not column_found:
                raise
            yield ImageRecord(id=name + "/", uri=uri, error=str(e))
        except (OSError, pa.ArrowException) as e:
            yield ImageRecord(id=name + "/", uri=uri, error=f"unreadable parquet file: {e}")


def _iter_rows(pfile: pq.ParquetFile, image_column: str, path: str, name: str, uri: str) -> Iterator[ImageRecord]:
    names = pfile.schema_arrow.names
    id_column = next((c for c in ID_COLUMNS if c in names and c != image_column), None)
    columns = [image_column] + ([id_column] if id_column else [])
    base_dir = os.path.dirname(os.path.abspath(path))
    row = 0
    for batch in pfile.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        keys = batch.column(id_column).to_pylist() if id_column else [None] * batch.num_rows
        for value, key in zip(batch.column(image_column).to_pylist(), keys):
            yield cell_record(value, f"{name}/{row if key is None else _key_text(key)}", f"{uri}#{row}", base_dir)
            row += 1


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
    for f in schema:
        if _is_bytes(f.type) or _is_image_struct(f.type):
            return f.name
    for f in schema:
        if _is_string(f.type) and f.name.lower() in PATH_COLUMN_NAMES:
            return f.name
    raise SourceError(
        f"no image column (bytes, {{bytes, path}} struct or file paths) among columns: {names}; "
        "choose one with --column"
    )


def cell_record(value: object, rid: str, uri: str, base_dir: str, root: str | None = None) -> ImageRecord:
    """A record for one cell: bytes, a `{bytes, path}` dict, or a file path (relative to base_dir),
    which must lead to a file inside `root` (default: base_dir)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if not value:
        return ImageRecord(id=rid, uri=uri, error="empty cell")
    if isinstance(value, bytes):
        return ImageRecord(id=rid, uri=uri, data=value)
    if not isinstance(value, str):
        return ImageRecord(id=rid, uri=uri, error=f"unsupported cell type: {type(value).__name__}")
    if "://" in value:
        return ImageRecord(id=rid, uri=value, error="cell is a URL; remote images are not downloaded")
    path = os.path.join(base_dir, value)
    return ImageRecord(id=rid, uri=display_name(os.path.abspath(path)), path=path, root=root or base_dir)


def _is_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_image_struct(t: pa.DataType) -> bool:
    return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0 and _is_bytes(t.field("bytes").type)
