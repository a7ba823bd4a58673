"""Webdataset tar shards: image members are read in memory, never extracted; hostile members (`..`
or absolute names, links, devices, pickle-like files) become error rows and are never loaded.
An image's id is `<shard>/<sample key>` (the member name without its extensions); the sample's
small `.json`/`.txt`/`.caption` sidecars give its url, key and caption (see sample_meta)."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator

from audit.sources.decode import internal_error, sniff_format
from audit.sources.record import IMAGE_EXTENSIONS, SNIFF_BYTES, ImageRecord, display_name, too_large
from audit.sources.sample_meta import MAX_SIDECAR_BYTES, SIDECAR_EXTENSIONS, from_sidecar

# Tar members that webdataset tools use for pickled objects; they are refused, never loaded.
FOLDER_ENTRY = "a folder entry"
NOT_A_FILE = "tar member is a link or device, not a file; not read"
UNSAFE_TAR_EXTENSIONS = {".pkl", ".pickle", ".pt", ".pth", ".pyd", ".npy", ".npz", ".joblib", ".ckpt", ".bin"}


def iter_tars(paths: list[str]) -> Iterator[ImageRecord]:
    for path in paths:
        for record in _iter_tar(path):
            record.container = display_name(os.path.abspath(path))  # the uri's file part, kept apart from it
            yield record


def _iter_tar(path: str) -> Iterator[ImageRecord]:
    """Image members of one shard; hostile members become error rows and are never loaded."""
    shard = display_name(os.path.basename(path))
    uri = display_name(os.path.abspath(path))
    if not os.path.isfile(path):  # a FIFO or device would block the scan
        yield ImageRecord(id=shard + "/", uri=uri, error="tar shard is not a regular file; not read")
        return
    try:
        tar = tarfile.open(path, mode="r:*")
    except (OSError, tarfile.TarError) as e:
        yield ImageRecord(id=shard + "/", uri=uri, error=f"unreadable tar shard: {e}")
        return
    with tar:
        try:
            yield from _samples(tar, shard, uri)
        except (OSError, tarfile.TarError, EOFError) as e:
            yield ImageRecord(id=shard + "/#truncated", uri=uri, error=f"tar shard truncated or corrupt: {e}")
        except Exception as e:  # noqa: BLE001 - the shard cannot be read further; the scan goes on
            yield ImageRecord(id=shard + "/#unreadable", uri=uri, error=internal_error(e))


def sample_key(name: str) -> str:
    """A member's webdataset sample key: its path up to the first dot of its file name."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{base.split('.', 1)[0]}" if folder else base.split(".", 1)[0]


def _samples(tar: tarfile.TarFile, shard: str, uri: str) -> Iterator[ImageRecord]:
    """Records in member order, each carrying what its sample's sidecars say (a sample's members are
    consecutive; the image may come before or after its `.json`/`.txt`)."""
    pending: list[ImageRecord] = []
    fields: dict = {}
    current = None
    for member in tar:
        key = sample_key(member.name)
        if key != current:
            yield from _with_meta(pending, fields, current)
            pending, fields, current = [], {}, key
        sidecar = _sidecar_fields(tar, member)
        if sidecar is not None:
            fields = {**sidecar, **fields}  # the first sidecar that names a field wins
            continue
        record = _member_safely(tar, member, shard, uri)
        if record is not None:
            pending.append(record)
    yield from _with_meta(pending, fields, current)


def _with_meta(records: list[ImageRecord], fields: dict, key: str | None) -> list[ImageRecord]:
    for record in records:
        record.add_meta({"key": display_name(key) if key else None, **fields})
    return records


def _sidecar_fields(tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict | None:
    """The fields of a small regular sidecar member (`.json`, `.txt`, ...), or None for any other member."""
    ext = os.path.splitext(member.name)[1].lower()
    if ext not in SIDECAR_EXTENSIONS or not member.isfile() or member.size > MAX_SIDECAR_BYTES:
        return None
    f = tar.extractfile(member)
    return from_sidecar(ext, f.read(MAX_SIDECAR_BYTES)) if f is not None else {}


def _member_safely(tar: tarfile.TarFile, member: tarfile.TarInfo, shard: str, uri: str) -> ImageRecord | None:
    """`_tar_member_record`, with anything unexpected turned into an error row for that member."""
    try:
        return _tar_member_record(tar, member, shard, uri)
    except Exception as e:  # noqa: BLE001 - one member never stops the shard
        name = display_name(member.name)
        return ImageRecord(id=f"{shard}/{name}", uri=f"{uri}#{name}", error=internal_error(e))


def member_refusal(member: tarfile.TarInfo) -> str | None:
    """Why a member is never read (nor copied by export), or None for a safe regular file; a folder
    entry is refused too (it holds nothing)."""
    name = member.name
    ext = os.path.splitext(name)[1].lower()
    if member.isdir():
        return FOLDER_ENTRY
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        return "unsafe tar member path (absolute or '..'); not read"
    if ext in UNSAFE_TAR_EXTENSIONS:
        return f"refused {ext} member: pickled objects are never loaded"
    if not member.isfile():
        return NOT_A_FILE
    return None


def _tar_member_record(tar: tarfile.TarFile, member: tarfile.TarInfo, shard: str, uri: str) -> ImageRecord | None:
    name = member.name
    rid = f"{shard}/{display_name(name)}"  # names that are not UTF-8 are escaped, as in folders
    muri = f"{uri}#{display_name(name)}"
    ext = os.path.splitext(name)[1].lower()
    refused = member_refusal(member)
    if refused in (FOLDER_ENTRY, NOT_A_FILE) and (member.isdir() or ext not in IMAGE_EXTENSIONS):
        return None  # folders, and links or devices not named as images: nothing to report
    if refused:
        return ImageRecord(id=rid, uri=muri, error=refused)
    if error := too_large(member.size):
        return ImageRecord(id=rid, uri=muri, error=error)
    f = tar.extractfile(member)
    data = f.read() if f is not None else b""
    if ext in IMAGE_EXTENSIONS or sniff_format(data[:SNIFF_BYTES]):
        return ImageRecord(id=f"{shard}/{display_name(sample_key(name))}", uri=muri, data=data)
    return None  # captions, json, class labels: part of the sample, not images
