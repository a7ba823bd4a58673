"""A Hugging Face `save_to_disk` folder is read only inside itself: every data file its `state.json`
names (and every split its `dataset_dict.json` names) must resolve, links included, inside the
folder; otherwise the source is refused with one line naming the file (exit 2)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.sources import SourceError, iter_records
from tests.conftest import image_bytes, noise_image


def _save(folder, seed: int, split: str | None = None) -> None:
    import datasets

    features = datasets.Features({"image": datasets.Image()})
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": image_bytes(noise_image(seed=seed)), "path": None}]}, features=features
    )
    (datasets.DatasetDict({split: ds}) if split else ds).save_to_disk(str(folder))


def _point_data_file(state_json, filename: str) -> None:
    state = json.loads(state_json.read_text())
    state["_data_files"] = [{"filename": filename}]
    state_json.write_text(json.dumps(state))


@pytest.fixture
def other(tmp_path):
    _save(tmp_path / "other", seed=9)
    return tmp_path / "other"


def test_a_data_file_outside_the_folder_is_refused(tmp_path, other):
    _save(tmp_path / "a" / "ds", seed=1)
    _point_data_file(tmp_path / "a" / "ds" / "state.json", "../../other/data-00000-of-00001.arrow")
    with pytest.raises(SourceError, match=r"state\.json.*\.\./\.\./other/data-00000-of-00001\.arrow"):
        list(iter_records(f"hf:{tmp_path / 'a' / 'ds'}"))
    result = CliRunner().invoke(
        main, ["scan", f"hf:{tmp_path / 'a' / 'ds'}", "--out", str(tmp_path / "out"), "--workers", "0"]
    )
    assert result.exit_code == 2, result.output
    assert "data-00000-of-00001.arrow" in result.output


@pytest.mark.parametrize("kind", ["absolute", "link", "split"])
def test_absolute_linked_and_split_escapes_are_refused(tmp_path, other, kind):
    target = tmp_path / "ds"
    if kind == "split":
        _save(target, seed=1, split="train")
        (target / "dataset_dict.json").write_text(json.dumps({"splits": ["../other"]}))
    else:
        _save(target, seed=1)
        if kind == "absolute":
            _point_data_file(target / "state.json", str(other / "data-00000-of-00001.arrow"))
        else:
            os.remove(target / "data-00000-of-00001.arrow")
            os.symlink(other / "data-00000-of-00001.arrow", target / "data-00000-of-00001.arrow")
    with pytest.raises(SourceError, match="outside"):
        list(iter_records(f"hf:{target}"))


def test_a_folder_that_stays_inside_itself_still_scans(tmp_path):
    _save(tmp_path / "ds", seed=1, split="train")
    assert len(list(iter_records(f"hf:{tmp_path / 'ds'}"))) == 1
