"""Reading items back by their uri after a scan (for the report's thumbnails): an image file, a member
of a webdataset shard (`SHARD.tar#MEMBER`) or a row of a parquet file (`FILE.parquet#ROW`). Each shard
or file is opened once for all of its items, read as a stream and left as soon as they are found;
nothing is read beyond the scan's size limit. An item that cannot be read back gets the reason why.
"""

from __future__ import annotations

import os
import tarfile
from collections import defaultdict

from audit.sources.record import display_name, read_file, too_large

CONTAINERS = (".tar", ".parquet")
REMOTE = "a remote item (Hugging Face Hub or URL): not read back"


def split_uri(uri: str) -> tuple[str, str | None]:
    """(file, item inside it or None): `s.tar#000/a.png` -> (`s.tar`, `000/a.png`)."""
    for extension in CONTAINERS:
        at = uri.find(extension + "#")
        if at >= 0:
            return uri[: at + len(extension)], uri[at + len(extension) + 1 :]
    return uri, None


def in_container(uri: str, container: str | None) -> tuple[str, str | None]:
    """(file, item inside it or None) from the container the scan recorded (None: a file of its own),
    whatever `#` the names hold."""
    if container is None:
        return uri, None
    return container, uri[len(container) + 1 :] if uri.startswith(container + "#") else None


def read_items(
    uris: list[str], column: str | None = None, containers: dict[str, str | None] | None = None
) -> dict[str, bytes | str]:
    """uri -> the item's bytes, or a short reason it cannot be read back. `containers` (uri -> the
    tar or parquet file the scan recorded) decides where each item is; without it (results of an
    older scan) the uri is split at its first `.tar#` or `.parquet#`."""
    found: dict[str, bytes | str] = {}
    inside: dict[str, dict[str, str]] = defaultdict(dict)  # container -> item -> uri
    for uri in dict.fromkeys(uris):
        path, item = (
            in_container(uri, containers[uri]) if containers is not None and uri in containers else split_uri(uri)
        )
        if "://" in uri:
            found[uri] = REMOTE
        elif item is None:
            data, error = read_file(uri)
            found[uri] = data if data is not None else error
        else:
            inside[path][item] = uri
    for path, items in inside.items():
        reader = _tar_items if path.endswith(".tar") else _parquet_items
        try:
            found.update(reader(path, items, column))
        except Exception as e:  # noqa: BLE001 - the shard changed or vanished since the scan
            found.update(
                {uri: f"cannot read {os.path.basename(path)} again: {type(e).__name__}" for uri in items.values()}
            )
    return {uri: found.get(uri, "not found again in its shard") for uri in uris}


def _tar_items(path: str, items: dict[str, str], column: str | None) -> dict[str, bytes | str]:
    found = {}
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            uri = items.get(display_name(member.name))
            if uri is None or uri in found:
                continue
            found[uri] = (
                (too_large(member.size) or "not a regular member")
                if not member.isfile() or too_large(member.size)
                else tar.extractfile(member).read()
            )
            if len(found) == len(items):
                break
    return found


def _parquet_items(path: str, items: dict[str, str], column: str | None) -> dict[str, bytes | str]:
    import pyarrow.parquet as pq

    from audit.sources.parquet import BATCH_ROWS, cell_record, pick_column

    pfile = pq.ParquetFile(path)
    image_column = pick_column(pfile.schema_arrow, column)
    wanted = {int(item): uri for item, uri in items.items() if item.isdigit()}
    found, row = {}, 0
    for batch in pfile.iter_batches(batch_size=BATCH_ROWS, columns=[image_column]):
        for value in batch.column(image_column).to_pylist():
            if row in wanted:
                record = cell_record(value, "", wanted[row], os.path.dirname(os.path.abspath(path)))
                found[wanted[row]] = record.read_bytes() or record.error or "empty cell"
            row += 1
        if len(found) == len(wanted):
            break
    return found
