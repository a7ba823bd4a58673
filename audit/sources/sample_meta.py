"""What a dataset knows about a sample besides its image: its URL, key and caption, from webdataset
sidecar members (`.json`, `.txt`, `.caption`) or from img2dataset-style parquet columns.

Sidecars are read only up to `MAX_SIDECAR_BYTES` each and parsed as JSON or text, never unpickled;
each value is trimmed (a caption to `MAX_CAPTION_CHARS`), so one row stays small whatever the data holds.
"""

from __future__ import annotations

import json

MAX_SIDECAR_BYTES = 64 * 1024  # a larger sidecar is not read (img2dataset's are a few hundred bytes)
MAX_CAPTION_CHARS = 200
MAX_FIELD_CHARS = 2000  # a URL or key longer than this is cut
JSON_SIDECARS = {".json"}
TEXT_SIDECARS = {".txt", ".caption", ".text"}
SIDECAR_EXTENSIONS = JSON_SIDECARS | TEXT_SIDECARS
FIELDS = ("url", "key", "caption")
# Column or JSON field names of each field, first found wins (img2dataset, LAION, HF datasets).
NAMES = {
    "url": ("url", "URL", "image_url"),
    "key": ("key", "__key__", "id"),
    "caption": ("caption", "text", "TEXT", "alt", "prompt"),
}


def trimmed(value: object, limit: int) -> str | None:
    """`value` as one line of text at most `limit` characters (an ellipsis marks a cut), or None."""
    if value is None or isinstance(value, (dict, list, bytes)):
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean(fields: dict) -> dict:
    """The known fields of `fields`, trimmed; absent ones left out."""
    limits = {"url": MAX_FIELD_CHARS, "key": MAX_FIELD_CHARS, "caption": MAX_CAPTION_CHARS}
    found = {name: trimmed(fields.get(name), limits[name]) for name in FIELDS}
    return {name: value for name, value in found.items() if value is not None}


def from_mapping(mapping: dict) -> dict:
    """url, key and caption from a JSON object or a table row, by their usual names."""
    return clean(
        {
            field: next((mapping[n] for n in names if mapping.get(n) not in (None, "")), None)
            for field, names in NAMES.items()
        }
    )


def from_sidecar(extension: str, data: bytes) -> dict:
    """The fields one sidecar member gives: a JSON object's url/key/caption, a text file's caption."""
    text = data[:MAX_SIDECAR_BYTES].decode("utf-8", "replace")
    if extension in TEXT_SIDECARS:
        return clean({"caption": text})
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return from_mapping(value) if isinstance(value, dict) else {}
