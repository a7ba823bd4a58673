"""Parquet and Hugging Face readers: columns, ids, error rows, metadata kept byte for byte."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from audit.sources import SourceError, iter_records
from audit.sources.hf import split_spec
from audit.sources.parquet import iter_parquet


def png_bytes(value: int, text: str | None = None) -> bytes:
    info = PngInfo()
    if text is not None:
        info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (value, 10, 20)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def jpeg_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (value, 10, 20)).save(buf, format="JPEG")
    return buf.getvalue()


def write_parquet(path, columns: dict) -> None:
    pq.write_table(pa.table(columns), path)


# --- parquet --------------------------------------------------------------------------


def test_bytes_column_with_null_cell_and_row_ids(tmp_path):
    images = [png_bytes(1, "a cat"), None, jpeg_bytes(3)]
    write_parquet(tmp_path / "a.parquet", {"caption": ["x", "y", "z"], "img": pa.array(images, pa.binary())})
    records = list(iter_records(str(tmp_path / "a.parquet")))
    assert [r.id for r in records] == ["a.parquet/0", "a.parquet/1", "a.parquet/2"]
    assert records[0].read_bytes() == images[0]
    assert records[0].decoded().info["parameters"] == "a cat"
    assert records[1].error == "empty cell" and records[1].decoded() is None
    assert records[2].decoded().format == "JPEG"


def test_hf_struct_column_with_id_column(tmp_path):
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [{"bytes": png_bytes(1), "path": "one.png"}, {"bytes": None, "path": None}]
    write_parquet(tmp_path / "s.parquet", {"__key__": ["k1", "k2"], "image": pa.array(cells, image_type)})
    records = list(iter_parquet([str(tmp_path / "s.parquet")], None))
    assert [r.id for r in records] == ["s.parquet/k1", "s.parquet/k2"]
    assert records[0].decoded().width == 8
    assert records[1].error == "empty cell"


def test_path_column_resolved_relative_to_the_parquet_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "p.png").write_bytes(png_bytes(5, "keep me"))
    write_parquet(tmp_path / "paths.parquet", {"id": [7, 8], "file_name": ["imgs/p.png", "imgs/missing.png"]})
    records = list(iter_records(str(tmp_path / "paths.parquet")))
    assert [r.id for r in records] == ["paths.parquet/7", "paths.parquet/8"]
    assert records[0].path == str(tmp_path / "imgs" / "p.png")
    assert records[0].uri == str(tmp_path / "imgs" / "p.png")
    assert records[0].decoded().info["parameters"] == "keep me"
    assert records[1].decoded() is None and records[1].error.startswith("unreadable")


def test_explicit_column_and_bad_columns(tmp_path):
    path = tmp_path / "c.parquet"
    write_parquet(path, {"a": pa.array([png_bytes(1)]), "b": pa.array([png_bytes(2)]), "n": [1]})
    assert next(iter_records(str(path), column="b")).read_bytes() == png_bytes(2)
    with pytest.raises(SourceError, match="column 'zz' not found; columns: a, b, n"):
        list(iter_records(str(path), column="zz"))
    with pytest.raises(SourceError, match="has type int64"):
        list(iter_records(str(path), column="n"))
    write_parquet(tmp_path / "none.parquet", {"caption": ["x"], "score": [0.5]})
    with pytest.raises(SourceError, match="columns: caption, score"):
        list(iter_records(str(tmp_path / "none.parquet")))


def test_url_cells_are_not_downloaded(tmp_path):
    write_parquet(tmp_path / "u.parquet", {"url": ["https://example.com/a.png"]})
    (record,) = iter_records(str(tmp_path / "u.parquet"))
    assert record.uri == "https://example.com/a.png" and "not downloaded" in record.error


@pytest.fixture
def parquet_folder(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_parquet(folder / "part-0.parquet", {"image": pa.array([png_bytes(1), png_bytes(2)])})
    (folder / "part-1.parquet").write_bytes(b"PAR1 this is not really parquet")
    write_parquet(folder / "part-2.parquet", {"image": pa.array([png_bytes(3)])})
    return folder


def test_folder_and_glob_dispatch_and_corrupt_file(parquet_folder):
    expected = ["part-0.parquet/0", "part-0.parquet/1", "part-1.parquet/", "part-2.parquet/0"]
    for spec in (str(parquet_folder), str(parquet_folder / "*.parquet")):
        records = list(iter_records(spec))
        assert [r.id for r in records] == expected
        assert records[2].error.startswith("unreadable parquet file")
        assert all(r.decoded() is not None for i, r in enumerate(records) if i != 2)


def test_streams_in_small_batches(tmp_path):
    path = tmp_path / "big.parquet"
    write_parquet(path, {"image": pa.array([png_bytes(i % 256) for i in range(150)])})
    ids = [r.id for r in iter_records(str(path))]
    assert ids == [f"big.parquet/{i}" for i in range(150)]


# --- Hugging Face ---------------------------------------------------------------------


@pytest.fixture
def imagefolder(tmp_path):
    root = tmp_path / "imgds"
    (root / "train").mkdir(parents=True)
    for i in range(3):
        (root / "train" / f"img{i}.png").write_bytes(png_bytes(i, f"prompt {i}, Steps: 20"))
    (root / "train" / "metadata.csv").write_text("file_name,label\nimg0.png,a\nimg1.png,b\nimg2.png,c\n")
    return root


def test_local_imagefolder_keeps_png_metadata(imagefolder):
    for spec in ("hf:" + str(imagefolder), f"hf:{imagefolder}:train"):
        records = list(iter_records(spec))
        assert [r.id for r in records] == ["train/img0.png", "train/img1.png", "train/img2.png"]  # the cell's path
        for record in records:
            name = record.path.rsplit("/", 1)[-1]
            assert record.uri == record.path
            assert record.read_bytes() == (imagefolder / "train" / name).read_bytes()
            assert record.decoded().info["parameters"].endswith("Steps: 20")


def test_flat_imagefolder_defaults_to_train(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(1, "flat"))
    (record,) = iter_records("hf:" + str(tmp_path))
    assert record.id == "train/a.png" and record.decoded().info["parameters"] == "flat"


class BrokenStream:
    """Stands in for a streamed hub dataset whose connection drops after `good` rows."""

    def __init__(self, good: int):
        import datasets

        self.good, self.split, self.features = good, "train", datasets.Features({"image": datasets.Image()})

    def cast_column(self, column, feature):
        return self

    def select_columns(self, columns):
        return self

    def __iter__(self):
        for i in range(self.good):
            yield {"image": {"bytes": png_bytes(i), "path": None}}
        raise OSError("connection reset by peer")


def test_stream_failure_mid_way_is_an_error_row_and_at_start_a_source_error(monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the fake stream stands in for a cached dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: BrokenStream(good=1))
    records = list(iter_records("hf:org/name"))
    assert [(r.id, r.error) for r in records] == [
        ("train/0", None),
        ("train/1", "dataset stream failed: connection reset by peer"),
    ]
    assert records[0].uri == "hf://org/name/train/0"
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: BrokenStream(good=0))
    with pytest.raises(SourceError, match="cannot read Hugging Face dataset 'org/name': connection reset"):
        list(iter_records("hf:org/name"))


def test_local_imagefolder_bad_split(imagefolder):
    with pytest.raises(SourceError, match="Bad split: test"):
        list(iter_records(f"hf:{imagefolder}:test"))


def test_save_to_disk_dataset(tmp_path):
    import datasets

    pictures = [{"bytes": png_bytes(1, "saved"), "path": None}, {"bytes": png_bytes(2), "path": None}]
    features = datasets.Features({"picture": datasets.Image(), "label": datasets.Value("int64")})
    data = {"picture": pictures, "label": [0, 1]}
    ds = datasets.Dataset.from_dict(data, features=features)
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "saved"))
    records = list(iter_records("hf:" + str(tmp_path / "saved")))
    assert [r.id for r in records] == ["test/0", "test/1"]
    assert records[0].uri.startswith("hf://") and records[0].uri.endswith("/test/0")
    assert records[0].read_bytes() == data["picture"][0]["bytes"]
    assert records[0].decoded().info["parameters"] == "saved"
    with pytest.raises(SourceError, match="no split 'train'; splits: test"):
        list(iter_records(f"hf:{tmp_path / 'saved'}:train"))


def test_unreachable_hub_dataset_fails_fast(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at import time, so also patch the loaded modules
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceError, match="HF_HUB_OFFLINE"):
        list(iter_records("hf:no-such-org-xyz/no-such-dataset:train"))


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("org/name", ("org/name", None)),
        ("org/name:validation", ("org/name", "validation")),
        ("/data/x:y/ds:test", ("/data/x:y/ds", "test")),
    ],
)
def test_split_spec(spec, expected):
    assert split_spec(spec) == expected


def test_split_spec_existing_path_with_colon(tmp_path):
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert split_spec(str(odd)) == (str(odd), None)
    with pytest.raises(SourceError, match="expected hf:org/name"):
        split_spec("org/name:")


def test_unreachable_hub_fails_fast_with_what_to_do(monkeypatch):
    import audit.hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(audit.hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(SourceError, match="Hub is unreachable.*HF_HUB_OFFLINE=1"):
        list(iter_records("hf:org/name"))
