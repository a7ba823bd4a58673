"""The stable reason codes of error rows: results.parquet's `error_kind` column, beside the `error`
message. The message may be reworded between versions; the code is what to group and filter on
(`GROUP BY error_kind`). `ERROR_KINDS` is the one table: code, the message beginnings it covers,
and what it means; README.md lists the same codes (a test keeps the two in step).
"""

from __future__ import annotations

# (code, message beginnings, meaning), in matching order: the first code whose beginning starts the
# message wins (so "internal error: the worker process died" is worker_died, not internal_error).
ERROR_KINDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "decode_failed",
        ("corrupt image", "image has zero width or height"),
        "the bytes claim an image format but do not decode",
    ),
    ("unsupported_format", ("not an image",), "the bytes are no image format the scan reads"),
    ("empty", ("empty file", "empty cell"), "no bytes: an empty file or table cell"),
    ("too_large", ("file too large",), "larger than the size limit; not read into memory"),
    ("too_many_pixels", ("decompression bomb",), "more pixels than --pixel-limit (a decompression bomb)"),
    (
        "outside_source",
        ("outside the source", "link leads outside the source"),
        "the path leads out of the source's folder (or --paths-under); not read",
    ),
    ("link_not_followed", ("link not followed",), "a link, and --follow-links none"),
    (
        "not_a_file",
        ("not a regular file", "tar shard is not a regular file", "tar member is a link or device"),
        "a FIFO, device, socket or link where a file was expected; not read",
    ),
    (
        "unsafe_member",
        ("unsafe tar member path", "refused "),
        "a tar member with an absolute or '..' name, or a pickled object; never loaded",
    ),
    ("remote", ("cell is a URL",), "a URL in a table cell; remote images are not downloaded"),
    ("unsupported_cell", ("unsupported cell type",), "a table cell of a type that holds no image"),
    ("no_image_column", ("no image column", "column '"), "a later parquet file without the image column"),
    ("truncated", ("tar shard truncated or corrupt",), "a tar shard that ends early or is corrupt"),
    (
        "read_failed",
        ("unreadable", "dataset stream failed", "cannot read", "cannot load"),
        "the file, folder, shard or dataset stream could not be read",
    ),
    ("timeout", ("took longer than the time budget",), "the item took longer than --item-timeout"),
    (
        "worker_died",
        ("internal error: the worker process died",),
        "the worker process died on the item (a crash or out of memory)",
    ),
    ("internal_error", ("internal error",), "an unexpected exception on the item (a bug)"),
)
OTHER = "other"  # a message no entry covers
CODES = tuple(code for code, _, _ in ERROR_KINDS) + (OTHER,)


def error_kind(message: str | None) -> str | None:
    """The reason code of an error message, None for no error."""
    if message is None:
        return None
    text = message.lstrip()
    return next((code for code, starts, _ in ERROR_KINDS if text.startswith(starts)), OTHER)
