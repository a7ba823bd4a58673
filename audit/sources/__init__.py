"""Sources: a spec (folder, file, webdataset `.tar` shards as a file, folder or brace/glob pattern,
parquet files, `hf:org/name[:split]` or `hf:LOCAL_DIR[:split]`) becomes a stream of `ImageRecord`s.
A folder is read as what it holds (layout.py: a Hugging Face `save_to_disk` folder, an img2dataset
output folder, webdataset or parquet shards, or images). One reader module per kind (folder, tar,
parquet, hf); this module only dispatches. Readers never raise on a bad item: it becomes a record
with `error` set. A source that cannot be opened at all raises `SourceError` (a usage error, exit
code 2). `paths_under`: the folder that relative file paths in parquet or dataset cells are under
(default: the parquet file's folder, or the dataset's); a path cell must lead to a file inside it.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterator

from audit.sources.decode import DEFAULT_PIXEL_LIMIT
from audit.sources.folder import FOLLOW_LINKS, iter_folder, iter_single_file
from audit.sources.layout import HF, PARQUET, TAR, Layout, folder_layout, hint_for_empty, is_saved_dataset
from audit.sources.record import ImageRecord, SourceError, SourceStats, display_name
from audit.sources.tar import iter_tars

MAX_NAMED_MISSING = 5  # missing paths named in the error
MAX_PATTERNS = 100_000  # names a brace pattern may expand to (x{0000000..9999999}.tar is refused at once)

__all__ = [
    "ImageRecord",
    "SourceError",
    "SourceStats",
    "display_name",
    "hint_for_empty",
    "is_dataset",
    "iter_records",
    "shard_files",
]


def iter_records(
    spec: str,
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
    column: str | None = None,
    follow_links: str = "inside",
    allow_missing: bool = False,
    stats: SourceStats | None = None,
    paths_under: str | None = None,
) -> Iterator[ImageRecord]:
    """Records of a source spec, in a stable order. `follow_links` (none, inside, all): which links
    a folder source follows; `inside`, the default, only those that stay in the folder. A brace or
    glob pattern naming paths that do not exist is a SourceError unless `allow_missing`; `stats`
    collects what was passed over (non-image files, missing paths) and the layout a folder was read as.
    `paths_under`: the folder relative path cells of parquet or dataset sources are under."""
    if follow_links not in FOLLOW_LINKS:
        raise ValueError(f"follow_links must be one of {', '.join(FOLLOW_LINKS)}, got {follow_links!r}")
    if paths_under is not None and not os.path.isdir(paths_under):
        raise SourceError(f"--paths-under names no folder: {paths_under}")
    stats = stats if stats is not None else SourceStats()
    for record in _dispatch(spec, column, follow_links, allow_missing, stats, paths_under):
        record.pixel_limit = pixel_limit
        yield record


def _dispatch(
    spec: str, column: str | None, follow_links: str, allow_missing: bool, stats: SourceStats, paths_under: str | None
) -> Iterator[ImageRecord]:
    if spec.startswith("hf:"):
        return _iter_hf(spec[3:], column, paths_under)
    paths = _expand(spec, allow_missing, stats)
    if not paths:
        raise SourceError(f"source not found: {spec}")
    if all(p.endswith(".parquet") for p in paths):
        return _iter_parquet(paths, column, paths_under)
    if all(p.endswith(".tar") for p in paths):
        return iter_tars(paths)
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return _iter_dir_auto(paths[0], column, follow_links, stats, paths_under)
    if len(paths) == 1 and os.path.isfile(paths[0]):
        return iter_single_file(paths[0])
    raise SourceError(f"cannot tell what kind of source this is: {spec} (matched {len(paths)} paths)")


def _iter_hf(spec: str, column: str | None, paths_under: str | None) -> Iterator[ImageRecord]:
    from audit.sources.hf import iter_hf

    return iter_hf(spec, column, paths_under)


def _iter_parquet(paths: list[str], column: str | None, paths_under: str | None) -> Iterator[ImageRecord]:
    from audit.sources.parquet import iter_parquet

    return iter_parquet(paths, column, paths_under)


def is_dataset(spec: str) -> bool:
    """Whether a spec names a dataset read as a whole (`hf:...`, or a `save_to_disk` folder), not files."""
    return spec.startswith("hf:") or is_saved_dataset(spec)


def shard_files(spec: str, allow_missing: bool = False) -> list[str] | None:
    """The webdataset or parquet files a spec names, in reading order (the shards of a
    distributed scan); None when it names something else (images, a folder of images, a dataset)."""
    if is_dataset(spec):
        return None
    paths = _expand(spec, allow_missing, SourceStats())
    if len(paths) == 1 and os.path.isdir(paths[0]):
        layout = folder_layout(paths[0])
        return layout.files if layout.kind in (TAR, PARQUET) else None
    for extension in (".tar", ".parquet"):
        if paths and all(p.endswith(extension) for p in paths):
            return paths
    return None


def _expand(spec: str, allow_missing: bool, stats: SourceStats) -> list[str]:
    """A path, or brace/glob pattern expanded to existing paths, sorted. Names of a pattern that do
    not exist (a brace member, a glob that matches nothing) are a SourceError, or with
    `allow_missing` are listed in `stats.missing`."""
    from braceexpand import braceexpand

    if os.path.lexists(spec):
        return [spec]
    patterns = list(itertools.islice(braceexpand(spec), MAX_PATTERNS + 1))
    if len(patterns) > MAX_PATTERNS:
        raise SourceError(f"the pattern {spec} names more than {MAX_PATTERNS:,} paths; split the source")
    found: list[str] = []
    missing: list[str] = []
    for pattern in patterns:
        matches = glob.glob(pattern) if glob.has_magic(pattern) else [pattern] if os.path.lexists(pattern) else []
        found.extend(matches)
        missing += [] if matches else [pattern]
    if found and missing and not allow_missing:
        shown = ", ".join(missing[:MAX_NAMED_MISSING]) + (" ..." if len(missing) > MAX_NAMED_MISSING else "")
        raise SourceError(
            f"{len(missing)} of the {len(patterns)} paths {spec} names do not exist: {shown} "
            "(--allow-missing-shards scans the others)"
        )
    stats.missing += missing if found else []
    return sorted(dict.fromkeys(found))


def _iter_dir_auto(
    root: str, column: str | None, follow_links: str, stats: SourceStats, paths_under: str | None
) -> Iterator[ImageRecord]:
    """A folder read as what it holds (layout.py): a saved dataset, shards, or images (recursive)."""
    layout = folder_layout(root)
    stats.layout, stats.metadata_files = layout.description, layout.metadata_files
    if layout.kind == HF:
        return _iter_hf(root, column, paths_under)
    if layout.kind == TAR:
        stats.skipped += _files_beside(root, layout)
        return iter_tars(layout.files)
    if layout.kind == PARQUET:
        stats.skipped += _files_beside(root, layout)
        return _iter_parquet(layout.files, column, paths_under)
    return _without_metadata(iter_folder(root, follow_links, stats), stats, layout.metadata_files)


def _files_beside(root: str, layout: Layout) -> int:
    """Regular files beside a layout's shards that are neither shards nor its metadata (a README, ...)."""
    files = sum(os.path.isfile(os.path.join(root, n)) for n in os.listdir(root))
    return files - len(layout.files) - layout.metadata_files


def _without_metadata(records: Iterator[ImageRecord], stats: SourceStats, metadata: int) -> Iterator[ImageRecord]:
    """The folder's records; its layout's metadata files, which the walk counts as non-images, are not."""
    yield from records
    stats.skipped -= metadata
