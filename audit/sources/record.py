"""The record type every source yields (`ImageRecord`: id, uri, lazy bytes, decoded at most once,
error), the `SourceError` of a source that cannot be read at all, and the name rules sources share."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from audit.sources.decode import DEFAULT_PIXEL_LIMIT, MAX_FILE_BYTES, DecodedImage, DecodeError, decode_image

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
    _decoded: DecodedImage | None = field(default=None, repr=False, compare=False)

    def read_bytes(self) -> bytes | None:
        """The raw bytes, or None (with `error` set) when they cannot be read."""
        if self.data is None and self.error is None and self.path is not None:
            try:
                with open(self.path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    self.error = too_large(size)
                    if self.error:
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


def display_name(path: str) -> str:
    """A UTF-8-safe form of a filesystem name (undecodable bytes shown as \\xNN escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def too_large(size: int) -> str | None:
    """The error of an item too large to read into memory, or None."""
    return f"file too large ({size} bytes)" if size > MAX_FILE_BYTES else None
