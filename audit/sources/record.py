"""The record type every source yields (`ImageRecord`: id, uri, lazy bytes, decoded at most once,
error), the `SourceError` of a source that cannot be read at all, and the name rules sources share."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from audit.sources.decode import (
    DEFAULT_PIXEL_LIMIT,
    MAX_FILE_BYTES,
    DecodedImage,
    DecodeError,
    decode_image,
    image_pixels,
    internal_error,
)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
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
    root: str | None = None  # `path` must lead to a file inside this folder (links resolved)
    url: str | None = None  # what the dataset says about the sample (webdataset sidecars, parquet columns)
    key: str | None = None
    caption: str | None = None
    container: str | None = None  # the tar or parquet file holding the item (uri = container#item)
    _decoded: DecodedImage | None = field(default=None, repr=False, compare=False)

    def add_meta(self, fields: dict) -> None:
        """Set url, key and caption from `fields` (see sample_meta), keeping values already set."""
        for name in ("url", "key", "caption"):
            if getattr(self, name) is None and fields.get(name) is not None:
                setattr(self, name, fields[name])

    def read_bytes(self) -> bytes | None:
        """The raw bytes, or None (with `error` set) when they cannot be read."""
        if self.data is None and self.error is None and self.path is not None:
            self.data, self.error = read_file(self.path, self.root)
        return None if self.error else self.data

    def pixels(self) -> int:
        """The pixels decoding will hold, from the header: 0 for an item that will not be decoded
        (unreadable, not an image, or over the pixel limit)."""
        data = self.read_bytes() if self._decoded is None else None
        pixels = image_pixels(data) if data is not None else None
        return pixels if pixels is not None and pixels <= self.pixel_limit else 0

    def release(self) -> None:
        """Drop the decoded pixels (the row has what it needs); bytes and error stay."""
        self._decoded = None

    def decoded(self) -> DecodedImage | None:
        """The decoded image, or None (with `error` set) when it cannot be decoded."""
        if self._decoded is None and self.error is None:
            data = self.read_bytes()
            if data is not None:
                try:
                    self._decoded = decode_image(data, self.pixel_limit)
                except DecodeError as e:
                    self.error = str(e)
                except Exception as e:  # noqa: BLE001 - one item never stops a scan
                    self.error = internal_error(e)
        return self._decoded

    def __getstate__(self):  # decoded pixels never travel between processes
        state = dict(self.__dict__)
        state["_decoded"] = None
        return state


@dataclass
class SourceStats:
    """What a reader passed over: files that are not images, paths a pattern names that do not exist,
    and the layout's own metadata files (recognised, not skipped)."""

    skipped: int = 0
    missing: list[str] = field(default_factory=list)
    metadata_files: int = 0  # files of the source's layout that are not images (img2dataset's tables and stats)
    layout: str = ""  # what a folder was read as (see layout.py), "" for other specs

    def as_dict(self) -> dict:
        """As the summary's `source_files`."""
        return {
            "skipped_non_images": self.skipped,
            "missing": self.missing,
            "metadata_files": self.metadata_files,
            "layout": self.layout or None,
        }


def display_name(path: str) -> str:
    """A UTF-8-safe form of a filesystem name (undecodable bytes shown as \\xNN escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def too_large(size: int) -> str | None:
    """The error of an item too large to read into memory, or None."""
    return f"file too large ({size} bytes)" if size > MAX_FILE_BYTES else None


def inside(path: str, root: str) -> bool:
    """Whether `path`, with every link resolved, lies in the folder `root`."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def read_file(path: str, root: str | None = None) -> tuple[bytes | None, str | None]:
    """(bytes, None) or (None, reason): only a regular file inside `root` (when given), opened without
    blocking (a FIFO or device never hangs the scan) and read no further than the size limit."""
    if root is not None and not inside(path, root):
        return None, "outside the source: the path leads out of the source's folder; not read"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        return None, f"unreadable: {e.strerror or e}"
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None, "not a regular file (a FIFO, device or socket); not read"
            if error := too_large(st.st_size):
                return None, error
            data = f.read(st.st_size + 1)  # a buffer of the file's size, not of the limit
            if len(data) > st.st_size:  # the file grew since fstat
                data += f.read(MAX_FILE_BYTES + 1 - len(data))
    except OSError as e:
        return None, f"unreadable: {e.strerror or e}"
    error = too_large(len(data))
    return (None, error) if error else (data, None)
