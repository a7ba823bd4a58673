"""What a folder named as a source holds, so that `audit scan DIR` reads it as its writer meant it:

- a Hugging Face `save_to_disk` folder (`state.json` + `dataset_info.json` + `data-*.arrow`, or a
  `dataset_dict.json` over split folders): read as a dataset, as `hf:DIR` would;
- an img2dataset output folder (`00000.tar`, `00000.parquet`, `00000_stats.json`, ...): its
  webdataset shards, else its parquet shards when they hold the images, else its image files;
  img2dataset's own `.parquet` tables and `_stats.json` files are recognised as the layout's
  metadata, never counted as skipped non-images;
- a folder of webdataset `.tar` shards, or of parquet files (other files beside them, such as a
  README, are skipped);
- otherwise a folder of images, walked recursively.

A folder that could be read two ways (webdataset shards and parquet files, or shards beside loose
images) is a SourceError whose message names the spec of each reading.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from audit.sources.record import IMAGE_EXTENSIONS, SourceError, display_name

HF_SAVED_MARKERS = ("state.json", "dataset_dict.json")  # written by datasets' save_to_disk
IMG2DATASET_STATS = re.compile(r"^\d+_stats\.json$")  # one per shard, written by img2dataset

HF = "hf"
TAR = "tar"
PARQUET = "parquet"
FOLDER = "folder"


@dataclass
class Layout:
    """How to read a folder: `kind` (hf, tar, parquet, folder), the shard files in reading order
    (tar, parquet), the files of the layout that are its metadata (never images, never skipped),
    and a short description for the summary."""

    kind: str
    files: list[str] = field(default_factory=list)
    metadata_files: int = 0
    description: str = ""


def folder_layout(root: str) -> Layout:
    """The layout of the folder `root` (see the module docstring); SourceError when it is ambiguous."""
    names = _top_level_files(root)
    if any(marker in names for marker in HF_SAVED_MARKERS):
        return Layout(HF, description="Hugging Face save_to_disk folder")
    by_kind = {kind: [os.path.join(root, n) for n in names if n.endswith("." + kind)] for kind in (TAR, PARQUET)}
    stats = [n for n in names if IMG2DATASET_STATS.match(n)]
    if stats:
        return _img2dataset(by_kind, len(stats))
    images = [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    _refuse_ambiguous(root, by_kind, images)
    if by_kind[TAR]:
        return Layout(TAR, by_kind[TAR], description="webdataset shards")
    if by_kind[PARQUET]:
        return Layout(PARQUET, by_kind[PARQUET], description="parquet files")
    return Layout(FOLDER, description="image folder")


def _img2dataset(by_kind: dict[str, list[str]], stats: int) -> Layout:
    """img2dataset writes `NNNNN_stats.json` per shard, and a `.parquet` table of each shard's urls
    and statuses beside its `.tar` (webdataset output) or as the shard itself (parquet output)."""
    if by_kind[TAR]:
        return Layout(TAR, by_kind[TAR], stats + len(by_kind[PARQUET]), "img2dataset output (webdataset shards)")
    if by_kind[PARQUET] and _holds_images(by_kind[PARQUET][0]):
        return Layout(PARQUET, by_kind[PARQUET], stats, "img2dataset output (parquet shards)")
    return Layout(FOLDER, metadata_files=stats + len(by_kind[PARQUET]), description="img2dataset output (image files)")


def _holds_images(path: str) -> bool:
    """Whether a parquet file has a column of image bytes (img2dataset's parquet output: `jpg`)."""
    import pyarrow.parquet as pq

    from audit.sources.parquet import bytes_column

    try:
        return bytes_column(pq.read_schema(path)) is not None
    except Exception:  # noqa: BLE001 - an unreadable table is read (and reported) as metadata
        return False


def _refuse_ambiguous(root: str, by_kind: dict[str, list[str]], images: list[str]) -> None:
    tars, parquets = by_kind[TAR], by_kind[PARQUET]
    shown = display_name(root.rstrip(os.sep) or root)
    if tars and parquets:
        raise SourceError(
            f"{shown} holds both webdataset shards ({len(tars)} .tar) and parquet files "
            f"({len(parquets)} .parquet); name the one to scan: '{shown}/*.tar' or '{shown}/*.parquet'"
        )
    shards = tars or parquets
    if shards and images:
        kind = "webdataset shards (.tar)" if tars else "parquet files"
        spec = f"'{shown}/*.tar'" if tars else f"'{shown}/*.parquet'"
        raise SourceError(
            f"{shown} holds both {len(images)} image files and {len(shards)} {kind}; name the shards "
            f"as {spec}, or scan the images from a folder without the shards"
        )


def _top_level_files(root: str) -> list[str]:
    """The names of the regular files (links followed) directly in `root`, sorted."""
    try:
        names = sorted(os.listdir(root))
    except OSError as e:
        raise SourceError(f"cannot read the folder {display_name(root)}: {e.strerror or e}") from e
    return [n for n in names if os.path.isfile(os.path.join(root, n))]


def is_saved_dataset(path: str) -> bool:
    """Whether `path` is a folder written by Hugging Face datasets' `save_to_disk`."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, m)) for m in HF_SAVED_MARKERS)


def hint_for_empty(root: str) -> str:
    """For a folder in which no image was found: the spec of shards or a dataset one level down, or ""."""
    if not os.path.isdir(root):
        return ""
    for name in sorted(os.listdir(root)):
        sub = os.path.join(root, name)
        if not os.path.isdir(sub):
            continue
        if is_saved_dataset(sub):
            return f"; {display_name(sub)} is a Hugging Face save_to_disk folder: scan it by that name"
        files = _top_level_files(sub)
        for kind in (TAR, PARQUET):
            if any(n.endswith("." + kind) for n in files):
                return f"; {display_name(sub)} holds .{kind} files: scan '{display_name(sub)}' or '{display_name(sub)}/*.{kind}'"
    return ""
