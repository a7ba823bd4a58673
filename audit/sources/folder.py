"""Folder sources: a single image file, or every image under a folder (recursive, content-sniffed,
directory links followed once, undecodable names escaped)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from audit.sources.decode import internal_error, sniff_format
from audit.sources.record import IMAGE_EXTENSIONS, SNIFF_BYTES, ImageRecord, SourceStats, display_name, inside

FOLLOW_LINKS = ("none", "inside", "all")


def iter_single_file(path: str) -> Iterator[ImageRecord]:
    name = display_name(os.path.basename(path))
    yield ImageRecord(id=name, uri=display_name(os.path.abspath(path)), path=path)


def iter_folder(root: str, follow_links: str = "inside", stats: SourceStats | None = None) -> Iterator[ImageRecord]:
    """Every image under root, recursively. Links are followed by `follow_links` (FOLLOW_LINKS):
    not at all, only when they lead to somewhere inside root, or all of them; each folder once."""
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
            record_or_dir = _classify_safely(entry, root, follow_links)
            if isinstance(record_or_dir, ImageRecord):
                yield record_or_dir
            elif record_or_dir is not None:
                subdirs.append(record_or_dir)
            elif stats is not None:
                stats.skipped += 1
        stack.extend(reversed(subdirs))  # depth-first, in sorted order


def _classify_safely(entry: os.DirEntry, root: str, follow_links: str) -> ImageRecord | str | None:
    """`_classify_entry`, with anything unexpected turned into an error row for that entry."""
    try:
        return _classify_entry(entry, root, follow_links)
    except Exception as e:  # noqa: BLE001 - one entry never stops the walk
        return ImageRecord(
            id=display_name(os.path.relpath(entry.path, root)), uri=display_name(entry.path), error=internal_error(e)
        )


def _classify_entry(entry: os.DirEntry, root: str, follow_links: str) -> ImageRecord | str | None:
    """An ImageRecord for an image (or bad image), a path for a folder, None to skip."""
    rel = display_name(os.path.relpath(entry.path, root))
    uri = display_name(os.path.abspath(entry.path))
    has_image_ext = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
    if entry.is_symlink() and follow_links != "all":
        refused = _refused_link(entry.path, root, follow_links)
        if refused:
            return ImageRecord(id=rel, uri=uri, error=refused)
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
        return ImageRecord(id=rel, uri=uri, path=entry.path, root=None if follow_links == "all" else root)
    return None


def _refused_link(path: str, root: str, follow_links: str) -> str | None:
    """Why a link is not followed under the policy, or None when it may be."""
    if follow_links == "none":
        return "link not followed (--follow-links none)"
    if not inside(path, root):
        return "link leads outside the source; not followed (--follow-links all to follow it)"
    return None
