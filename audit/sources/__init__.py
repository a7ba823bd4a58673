"""Sources: a spec (folder, file, webdataset `.tar` shards as a file, folder or brace/glob pattern,
parquet files, `hf:org/name[:split]` or `hf:LOCAL_DIR[:split]`) becomes a stream of `ImageRecord`s.
One reader module per kind (folder, tar, parquet, hf); this module only dispatches. Readers never
raise on a bad item: it becomes a record with `error` set. A source that cannot be opened at all
raises `SourceError` (a usage error, exit code 2).
"""
from __future__ import annotations

import glob
import itertools
import os
from typing import Iterator

from audit.sources.decode import DEFAULT_PIXEL_LIMIT
from audit.sources.folder import FOLLOW_LINKS, iter_folder, iter_single_file
from audit.sources.record import ImageRecord, SourceError, SourceStats, display_name
from audit.sources.tar import iter_tars

MAX_NAMED_MISSING = 5  # missing paths named in the error
MAX_PATTERNS = 100_000  # names a brace pattern may expand to (x{0000000..9999999}.tar is refused at once)

__all__ = ["ImageRecord", "SourceError", "SourceStats", "display_name", "iter_records", "shard_files"]


def iter_records(spec: str, pixel_limit: int = DEFAULT_PIXEL_LIMIT, column: str | None = None,
                 follow_links: str = "inside", allow_missing: bool = False,
                 stats: SourceStats | None = None) -> Iterator[ImageRecord]:
    """Records of a source spec, in a stable order. `follow_links` (none, inside, all): which links
    a folder source follows; `inside`, the default, only those that stay in the folder. A brace or
    glob pattern naming paths that do not exist is a SourceError unless `allow_missing`; `stats`
    collects what was passed over (non-image files, missing paths)."""
    if follow_links not in FOLLOW_LINKS:
        raise ValueError(f"follow_links must be one of {', '.join(FOLLOW_LINKS)}, got {follow_links!r}")
    stats = stats if stats is not None else SourceStats()
    for record in _dispatch(spec, column, follow_links, allow_missing, stats):
        record.pixel_limit = pixel_limit
        yield record


def _dispatch(spec: str, column: str | None, follow_links: str, allow_missing: bool,
              stats: SourceStats) -> Iterator[ImageRecord]:
    if spec.startswith("hf:"):
        from audit.sources.hf import iter_hf

        return iter_hf(spec[3:], column)
    paths = _expand(spec, allow_missing, stats)
    if not paths:
        raise SourceError(f"source not found: {spec}")
    if all(p.endswith(".parquet") for p in paths):
        from audit.sources.parquet import iter_parquet

        return iter_parquet(paths, column)
    if all(p.endswith(".tar") for p in paths):
        return iter_tars(paths)
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return _iter_dir_auto(paths[0], column, follow_links, stats)
    if len(paths) == 1 and os.path.isfile(paths[0]):
        return iter_single_file(paths[0])
    raise SourceError(f"cannot tell what kind of source this is: {spec} (matched {len(paths)} paths)")


def shard_files(spec: str, allow_missing: bool = False) -> list[str] | None:
    """The webdataset or parquet files a spec names, in reading order (the shards of a
    distributed scan); None when it names something else (images, a folder of images, hf:)."""
    if spec.startswith("hf:"):
        return None
    paths = _expand(spec, allow_missing, SourceStats())
    if len(paths) == 1 and os.path.isdir(paths[0]):
        root = paths[0]
        paths = [os.path.join(root, n) for n in sorted(os.listdir(root)) if os.path.isfile(os.path.join(root, n))]
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
        raise SourceError(f"{len(missing)} of the {len(patterns)} paths {spec} names do not exist: {shown} "
                          "(--allow-missing-shards scans the others)")
    stats.missing += missing if found else []
    return sorted(dict.fromkeys(found))


def _iter_dir_auto(root: str, column: str | None, follow_links: str, stats: SourceStats) -> Iterator[ImageRecord]:
    """A folder of webdataset shards, of parquet files, or of images (recursive)."""
    names = sorted(os.listdir(root))
    files = [n for n in names if os.path.isfile(os.path.join(root, n))]
    if files and all(n.endswith(".tar") for n in files):
        yield from iter_tars([os.path.join(root, n) for n in files])
    elif files and all(n.endswith(".parquet") for n in files):
        from audit.sources.parquet import iter_parquet

        yield from iter_parquet([os.path.join(root, n) for n in files], column)
    else:
        yield from iter_folder(root, follow_links, stats)
