"""`ImageRecord` and the readers that turn a source spec into records.

Specs: a folder or single file, webdataset `.tar` shards (a file, a folder of them, or a
brace/glob pattern), parquet files (a file, folder or glob), and Hugging Face datasets
(`hf:org/name[:split]` or `hf:LOCAL_DIR[:split]`). Readers never raise on a bad item: the
item becomes a record with `error` set. A source that cannot be opened at all raises
`SourceError` (a usage error, exit code 2).
"""
from __future__ import annotations

import glob
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Iterator

from audit.decode import DEFAULT_PIXEL_LIMIT, MAX_FILE_BYTES, DecodedImage, DecodeError, decode_image, sniff_format

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# Tar members that webdataset tools use for pickled objects; they are refused, never loaded.
UNSAFE_TAR_EXTENSIONS = {".pkl", ".pickle", ".pt", ".pth", ".pyd", ".npy", ".npz", ".joblib", ".ckpt", ".bin"}
SNIFF_BYTES = 16


class SourceError(Exception):
    """The source as a whole cannot be read (bad path, bad spec, dataset not found)."""


@dataclass
class ImageRecord:
    """One item of a source. Bytes are read lazily and decoded at most once."""

    id: str
    uri: str
    path: str | None = None
    data: bytes | None = None
    error: str | None = None
    pixel_limit: int = DEFAULT_PIXEL_LIMIT
    _decoded: DecodedImage | None = field(default=None, repr=False, compare=False)

    def read_bytes(self) -> bytes | None:
        """The raw bytes, or None (with `error` set) when they cannot be read."""
        if self.data is None and self.error is None and self.path is not None:
            try:
                with open(self.path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size > MAX_FILE_BYTES:
                        self.error = f"file too large ({size} bytes)"
                        return None
                    self.data = f.read()
            except OSError as e:
                self.error = f"unreadable: {e.strerror or e}"
        return None if self.error else self.data

    def decoded(self) -> DecodedImage | None:
        """The decoded image, or None (with `error` set) when it cannot be decoded."""
        if self._decoded is None and self.error is None:
            data = self.read_bytes()
            if data is not None:
                try:
                    self._decoded = decode_image(data, self.pixel_limit)
                except DecodeError as e:
                    self.error = str(e)
        return self._decoded

    def __getstate__(self):  # decoded pixels never travel between processes
        state = dict(self.__dict__)
        state["_decoded"] = None
        return state


def iter_records(spec: str, pixel_limit: int = DEFAULT_PIXEL_LIMIT, column: str | None = None) -> Iterator[ImageRecord]:
    """Records of a source spec, in a stable order."""
    for record in _dispatch(spec, column):
        record.pixel_limit = pixel_limit
        yield record


def _dispatch(spec: str, column: str | None) -> Iterator[ImageRecord]:
    if spec.startswith("hf:"):
        from audit.hf_source import iter_hf

        return iter_hf(spec[3:], column)
    paths = _expand(spec)
    if not paths:
        raise SourceError(f"source not found: {spec}")
    if all(p.endswith(".parquet") for p in paths):
        from audit.parquet_source import iter_parquet

        return iter_parquet(paths, column)
    if all(p.endswith(".tar") for p in paths):
        return _iter_tars(paths)
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return _iter_dir_auto(paths[0], column)
    if len(paths) == 1 and os.path.isfile(paths[0]):
        return _iter_single_file(paths[0])
    raise SourceError(f"cannot tell what kind of source this is: {spec} (matched {len(paths)} paths)")


def shard_files(spec: str) -> list[str] | None:
    """The webdataset or parquet files a spec names, in reading order (the shards of a
    distributed scan); None when it names something else (images, a folder of images, hf:)."""
    if spec.startswith("hf:"):
        return None
    paths = _expand(spec)
    if len(paths) == 1 and os.path.isdir(paths[0]):
        root = paths[0]
        paths = [os.path.join(root, n) for n in sorted(os.listdir(root)) if os.path.isfile(os.path.join(root, n))]
    for extension in (".tar", ".parquet"):
        if paths and all(p.endswith(extension) for p in paths):
            return paths
    return None


def _expand(spec: str) -> list[str]:
    """A path, or brace/glob pattern expanded to existing paths, sorted."""
    from braceexpand import braceexpand

    if os.path.lexists(spec):
        return [spec]
    found: list[str] = []
    for pattern in braceexpand(spec):
        found.extend(glob.glob(pattern) if glob.has_magic(pattern) else [pattern] if os.path.lexists(pattern) else [])
    return sorted(dict.fromkeys(found))


def _iter_dir_auto(root: str, column: str | None) -> Iterator[ImageRecord]:
    """A folder of webdataset shards, of parquet files, or of images (recursive)."""
    names = sorted(os.listdir(root))
    files = [n for n in names if os.path.isfile(os.path.join(root, n))]
    if files and all(n.endswith(".tar") for n in files):
        yield from _iter_tars([os.path.join(root, n) for n in files])
    elif files and all(n.endswith(".parquet") for n in files):
        from audit.parquet_source import iter_parquet

        yield from iter_parquet([os.path.join(root, n) for n in files], column)
    else:
        yield from _iter_folder(root)


# --- folders ---------------------------------------------------------------------------

def display_name(path: str) -> str:
    """A UTF-8-safe form of a filesystem name (undecodable bytes shown as \\xNN escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _iter_single_file(path: str) -> Iterator[ImageRecord]:
    name = display_name(os.path.basename(path))
    yield ImageRecord(id=name, uri=display_name(os.path.abspath(path)), path=path)


def _iter_folder(root: str) -> Iterator[ImageRecord]:
    """Every image under root, recursively, following directory links once (no loops)."""
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(current), key=lambda e: os.fsencode(e.name))
        except OSError as e:
            rel = display_name(os.path.relpath(current, root))
            yield ImageRecord(id=rel + "/", uri=display_name(current), error=f"unreadable folder: {e.strerror or e}")
            continue
        subdirs = []
        for entry in entries:
            record_or_dir = _classify_entry(entry, root)
            if isinstance(record_or_dir, ImageRecord):
                yield record_or_dir
            elif record_or_dir is not None:
                subdirs.append(record_or_dir)
        stack.extend(reversed(subdirs))  # depth-first, in sorted order


def _classify_entry(entry: os.DirEntry, root: str) -> ImageRecord | str | None:
    """An ImageRecord for an image (or bad image), a path for a folder, None to skip."""
    rel = display_name(os.path.relpath(entry.path, root))
    uri = display_name(os.path.abspath(entry.path))
    has_image_ext = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
    try:
        st = os.stat(entry.path)  # follows links; a link loop raises ELOOP
    except OSError as e:
        if has_image_ext or entry.is_symlink():
            return ImageRecord(id=rel, uri=uri, error=f"unreadable: {e.strerror or e}")
        return None
    if stat.S_ISDIR(st.st_mode):
        return entry.path
    if not stat.S_ISREG(st.st_mode):
        return ImageRecord(id=rel, uri=uri, error="not a regular file") if has_image_ext else None
    try:
        with open(entry.path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        return ImageRecord(id=rel, uri=uri, error=f"unreadable: {e.strerror or e}")
    if sniff_format(head) or has_image_ext:  # content decides; an image name that is not an image errors later
        return ImageRecord(id=rel, uri=uri, path=entry.path)
    return None


# --- webdataset tar shards ---------------------------------------------------------------

def _iter_tars(paths: list[str]) -> Iterator[ImageRecord]:
    for path in paths:
        yield from _iter_tar(path)


def _iter_tar(path: str) -> Iterator[ImageRecord]:
    """Image members of one shard; hostile members become error rows and are never loaded."""
    shard = display_name(os.path.basename(path))
    uri = display_name(os.path.abspath(path))
    try:
        tar = tarfile.open(path, mode="r:*")
    except (OSError, tarfile.TarError) as e:
        yield ImageRecord(id=shard + "/", uri=uri, error=f"unreadable tar shard: {e}")
        return
    with tar:
        try:
            for member in tar:
                record = _tar_member_record(tar, member, shard, uri)
                if record is not None:
                    yield record
        except (OSError, tarfile.TarError, EOFError) as e:
            yield ImageRecord(id=shard + "/#truncated", uri=uri, error=f"tar shard truncated or corrupt: {e}")


def _tar_member_record(tar: tarfile.TarFile, member: tarfile.TarInfo, shard: str, uri: str) -> ImageRecord | None:
    name = member.name
    rid = f"{shard}/{name}"
    muri = f"{uri}#{name}"
    ext = os.path.splitext(name)[1].lower()
    if member.isdir():
        return None
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        return ImageRecord(id=rid, uri=muri, error="unsafe tar member path (absolute or '..'); not read")
    if ext in UNSAFE_TAR_EXTENSIONS:
        return ImageRecord(id=rid, uri=muri, error=f"refused {ext} member: pickled objects are never loaded")
    if not member.isfile():
        if ext in IMAGE_EXTENSIONS:
            return ImageRecord(id=rid, uri=muri, error="tar member is a link or device, not a file; not read")
        return None
    if member.size > MAX_FILE_BYTES:
        return ImageRecord(id=rid, uri=muri, error=f"file too large ({member.size} bytes)")
    f = tar.extractfile(member)
    data = f.read() if f is not None else b""
    if ext in IMAGE_EXTENSIONS or sniff_format(data[:SNIFF_BYTES]):
        return ImageRecord(id=rid, uri=muri, data=data)
    return None  # captions, json, class labels: part of the sample, not images
