"""What the pages of a parquet column chunk expand to, read from their own headers without
decompressing anything. The file's metadata states each chunk's sizes, but a hostile file can state
less than its pages hold; Arrow allocates and decompresses each page by its page header, so the
headers are what bounds memory. Each header is a Thrift struct (compact protocol) followed by the
page's compressed bytes: field 2 is the uncompressed size, 3 the compressed size, and the data page
header (5, or 8 for version 2) holds the page's number of values in its field 1.
"""

from __future__ import annotations

from typing import BinaryIO

HEADER_READ = 256  # bytes read for one page header (statistics in it can be longer: read again)
MAX_PAGES = 100_000  # headers read per chunk at most; more pages count as unreadable


class PageHeaderError(ValueError):
    """The page headers cannot be read as the format says."""


def chunk_sizes(f: BinaryIO, start: int, length: int, values: int, file_size: int) -> tuple[int, int]:
    """(expanded, stored): the uncompressed sizes the page headers of the chunk at `start` declare,
    headers included, and the bytes its pages take in the file, walking pages as a reader does until
    their data pages hold the chunk's `values`. Raises PageHeaderError when a header is malformed or
    the pages run past the chunk's `length` stored bytes or the file."""
    total, position, seen, end = 0, start, 0, min(start + length, file_size)
    for _ in range(MAX_PAGES):
        if seen >= values:
            return total, position - start
        if position >= end:
            raise PageHeaderError("the pages hold fewer values than the column chunk states")
        fields, header_length = _page_header(f, position, file_size)
        uncompressed, compressed = fields.get(2), fields.get(3)
        if not isinstance(uncompressed, int) or not isinstance(compressed, int) or min(uncompressed, compressed) < 0:
            raise PageHeaderError("a page header without valid sizes")
        data_page = fields.get(5) or fields.get(8)  # DataPageHeader or DataPageHeaderV2: field 1 = num_values
        seen += data_page.get(1, 0) if isinstance(data_page, dict) else 0
        total += header_length + uncompressed
        position += header_length + compressed
    raise PageHeaderError(f"more than {MAX_PAGES} pages in one column chunk")


def _page_header(f: BinaryIO, position: int, file_size: int) -> tuple[dict, int]:
    """(the header's fields, its length in bytes)."""
    size = HEADER_READ
    while True:
        f.seek(position)
        data = f.read(min(size, file_size - position))
        try:
            reader = _Compact(data)
            return reader.struct_fields(), reader.pos
        except _Short:
            if position + size >= file_size or size >= 1 << 24:
                raise PageHeaderError("page header runs past the end of the file") from None
            size *= 8


class _Short(Exception):
    """More bytes are needed."""


class _Compact:
    """Just enough of Thrift's compact protocol to walk a struct and keep its top-level integers."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.depth = data, 0, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Short
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise PageHeaderError("varint too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def struct_fields(self) -> dict[int, int | dict]:
        """Walk one struct; return its integer and struct fields by id (structs as dicts)."""
        fields, field_id = {}, 0
        self.depth += 1
        if self.depth > 16:
            raise PageHeaderError("page header nested too deeply")
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == 0:
                self.depth -= 1
                return fields
            delta = head >> 4
            field_id = field_id + delta if delta else self.zigzag()
            value = self.skip(kind)
            if value is not None:
                fields[field_id] = value

    def skip(self, kind: int) -> int | dict | None:
        """Read past one value of `kind`; integers and structs (as dicts) are returned."""
        if kind in (1, 2):  # booleans carried in the type
            return None
        if kind == 3:
            self.byte()
            return None
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            self.pos += 8
            if self.pos > len(self.data):
                raise _Short
            return None
        if kind == 8:
            length = self.varint()  # read first: `self.pos += self.varint()` would lose the varint's own bytes
            self.pos += length
            if self.pos > len(self.data):
                raise _Short
            return None
        if kind in (9, 10):
            head = self.byte()
            count = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(count):
                self.skip_element(head & 0x0F)
            return None
        if kind == 11:
            count = self.varint()
            types = self.byte() if count else 0
            for _ in range(count):
                self.skip_element(types >> 4)
                self.skip_element(types & 0x0F)
            return None
        if kind == 12:
            return self.struct_fields()
        raise PageHeaderError(f"unknown Thrift type {kind}")

    def skip_element(self, kind: int) -> None:
        if kind in (1, 2):  # a boolean inside a list or map takes a byte
            self.byte()
        else:
            self.skip(kind)
