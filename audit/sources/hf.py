"""Hugging Face datasets: `hf:org/name[:split]`, or `hf:DIR[:split]` for a local folder
(an `imagefolder`-style tree of images, or a folder written by `save_to_disk`).

Rows are streamed. An `Image` column is read undecoded (`Image(decode=False)`), so the
record gets the file's own bytes and its metadata survives. Ids are `<split>/<file name>` when
the cell records its file's path (`{bytes, path}`), else `<split>/<index>`; uris hold the index. The
default split is `train` when present, else the first. A dataset that cannot be loaded
raises `SourceError`; a row that fails mid-stream becomes an error record and ends the
stream (the dataset's iterator cannot resume after an exception). A `save_to_disk` folder is read
only inside itself: every split and data file its JSON files name must resolve inside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import datasets

from audit.sources.layout import is_saved_dataset
from audit.sources.parquet import cell_path, cell_record, meta_columns, pick_column
from audit.sources.record import ImageRecord, SourceError, display_name, inside, read_file
from audit.sources.sample_meta import from_mapping

MAX_STATE_BYTES = 16 << 20  # a saved dataset's state.json or dataset_dict.json


def iter_hf(spec: str, column: str | None, paths_under: str | None = None) -> Iterator[ImageRecord]:
    """Records of one split of a Hugging Face dataset, in its order. Path cells are read relative to,
    and only inside, `paths_under` when given (else the local dataset's folder, or the datasets cache)."""
    name, split = split_spec(spec)
    dataset, split = _load(name, split)
    image_column = _image_column(dataset.features, column)
    if isinstance((dataset.features or {}).get(image_column), datasets.Image):
        dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    base_dir = paths_under or (name if os.path.isdir(name) else "")
    root = base_dir or _hub_cache()
    meta = meta_columns(dataset.features.arrow_schema) if dataset.features else {}
    rows = iter(dataset.select_columns(list(dict.fromkeys([image_column, *meta.values()]))))
    index = 0
    while True:
        rid, uri = f"{split}/{index}", f"hf://{name}/{split}/{index}"
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as e:  # whatever the dataset's own reader raises
            if index == 0:
                raise SourceError(f"cannot read Hugging Face dataset '{name}': {_one_line(e)}") from e
            yield ImageRecord(id=rid, uri=uri, error=f"dataset stream failed: {_one_line(e)}")
            return
        value = row[image_column]
        record = cell_record(value, f"{split}/{cell_path(value)}" if cell_path(value) else rid, uri, base_dir, root)
        record.add_meta(from_mapping({field: row.get(column) for field, column in meta.items()}))
        yield record
        index += 1


def _hub_cache() -> str:
    """Where a Hub dataset's files may lie: the datasets cache (path cells are read only there)."""
    return str(datasets.config.HF_DATASETS_CACHE)


def split_spec(spec: str) -> tuple[str, str | None]:
    """(name or folder, split or None). An existing path is taken whole, even with a ':'."""
    if os.path.exists(spec):
        return spec, None
    colon = spec.find(":", spec.rfind("/") + 1)
    name, split = (spec, None) if colon < 0 else (spec[:colon], spec[colon + 1 :])
    if not name or split == "":
        raise SourceError(f"bad Hugging Face spec 'hf:{spec}'; expected hf:org/name[:split] or hf:DIR[:split]")
    return name, split


def _load(name: str, split: str | None) -> tuple[datasets.IterableDataset, str]:
    """The chosen split as an iterable dataset, and the split's name."""
    from audit.hub import hub_offline_requested, hub_reachable

    local = os.path.isdir(name)
    if not local and not hub_offline_requested() and not hub_reachable():
        raise SourceError(
            f"cannot load Hugging Face dataset '{name}': the Hub is unreachable; "
            "to use a copy in the local cache, set HF_HUB_OFFLINE=1"
        )
    try:
        if local and is_saved_dataset(name):
            check_saved_dataset(name)
            loaded = datasets.load_from_disk(name)
        else:
            loaded = datasets.load_dataset(name, split=split, streaming=True)
    except SourceError:
        raise
    except ConnectionError as e:
        raise SourceError(
            f"cannot load Hugging Face dataset '{name}': the Hub is unreachable (no network, or HF_HUB_OFFLINE=1) "
            "and the dataset is not in the local cache"
        ) from e
    except Exception as e:  # datasets raises many types for "not found", "bad split", bad files
        raise SourceError(f"cannot load Hugging Face dataset '{name}': {_one_line(e)}") from e
    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split is None:
            split = "train" if "train" in loaded else next(iter(loaded), None)
        if split not in loaded:
            splits = ", ".join(loaded) or "(none)"
            raise SourceError(f"Hugging Face dataset '{name}' has no split '{split}'; splits: {splits}")
        loaded = loaded[split]
    split = split or str(loaded.split or "train")
    if isinstance(loaded, datasets.Dataset):
        loaded = loaded.to_iterable_dataset()
    return loaded, split


def check_saved_dataset(folder: str) -> None:
    """Raise SourceError unless every split `dataset_dict.json` names and every data file each
    `state.json` names lies, links resolved, inside `folder` (datasets would read them wherever)."""
    splits_file = os.path.join(folder, "dataset_dict.json")
    if os.path.lexists(splits_file):
        splits = _saved_json(splits_file).get("splits")
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise SourceError(f"{display_name(splits_file)}: 'splits' must be a list of names")
        for split in splits:
            _inside_or_refuse(os.path.join(folder, split), folder, splits_file, split)
            check_saved_split(os.path.join(folder, split), folder)
    else:
        check_saved_split(folder, folder)


def check_saved_split(split_dir: str, folder: str) -> None:
    """Every data file the split's `state.json` names lies inside `folder`."""
    state_file = os.path.join(split_dir, "state.json")
    files = _saved_json(state_file).get("_data_files")
    if not isinstance(files, list):
        raise SourceError(f"{display_name(state_file)}: '_data_files' must be a list")
    for entry in files:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise SourceError(f"{display_name(state_file)}: a '_data_files' entry names no file")
        _inside_or_refuse(os.path.join(split_dir, name), folder, state_file, name)


def _inside_or_refuse(path: str, folder: str, named_in: str, name: str) -> None:
    if not inside(path, folder):
        raise SourceError(
            f"{display_name(named_in)} names {display_name(name)!r}, which lies outside the dataset "
            f"folder {display_name(folder)}; not read"
        )


def _saved_json(path: str) -> dict:
    """A small JSON object file of a saved dataset (a regular file, at most MAX_STATE_BYTES)."""
    data, error = read_file(path)
    if error is None and len(data) > MAX_STATE_BYTES:
        error = f"over {MAX_STATE_BYTES} bytes"
    try:
        value = json.loads(data) if error is None else None
    except (ValueError, RecursionError) as e:
        error = f"not JSON: {type(e).__name__}"
    if error is not None or not isinstance(value, dict):
        raise SourceError(
            f"{display_name(path)}: cannot read it as a saved dataset's JSON ({error or 'not an object'})"
        )
    return value


def _image_column(features: datasets.Features | None, column: str | None) -> str:
    """`column` if given, else the first `Image` feature, else the parquet rules."""
    if features is None:
        if column is None:
            raise SourceError("the dataset does not declare its columns; choose the image column with --column")
        return column
    if column is None:
        column = next((key for key, feature in features.items() if isinstance(feature, datasets.Image)), None)
    return pick_column(features.arrow_schema, column)


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
