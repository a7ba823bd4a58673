"""Rows carry what the dataset knows: webdataset sidecars, img2dataset parquet columns and HF cell
paths become the url, key and caption columns and the ids; sidecars are bounded and never unpickled."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from audit.engine.local import scan
from audit.sources import iter_records
from audit.sources.sample_meta import MAX_CAPTION_CHARS, MAX_SIDECAR_BYTES, from_sidecar
from audit.sources.tar import sample_key
from tests.conftest import image_bytes, noise_image, write_tar


def test_sample_keys_are_member_names_without_extensions():
    assert sample_key("00001.jpg") == "00001"
    assert sample_key("part/00001.seg.png") == "part/00001"
    assert sample_key("dir.v2/a.b.c") == "dir.v2/a"


def test_webdataset_sidecars_become_columns_and_ids_are_sample_keys(tmp_path):
    long_caption = "a very long caption " * 40
    img2dataset = {
        "url": "https://cdn.example.com/cats/1.jpg",
        "key": "000000001",
        "caption": long_caption,
        "status": "success",
    }
    write_tar(
        tmp_path / "s.tar",
        [
            ("000000001.json", json.dumps(img2dataset).encode()),  # sidecar before its image
            ("000000001.jpg", image_bytes(noise_image(seed=1), "JPEG")),
            ("000000002.png", image_bytes(noise_image(seed=2))),  # sidecar after its image; text only
            ("000000002.txt", b"  a dog\n on a  sofa "),
            ("000000003.png", image_bytes(noise_image(seed=3))),  # no sidecar at all
            ("000000004.json", b"{" * 100 + b"not json"),
            ("000000004.png", image_bytes(noise_image(seed=4))),
        ],
    )
    result = scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    rows = {r["id"]: r for r in result.rows}
    assert list(rows) == ["s.tar/000000001", "s.tar/000000002", "s.tar/000000003", "s.tar/000000004"]
    first = rows["s.tar/000000001"]
    assert (first["url"], first["key"]) == (img2dataset["url"], "000000001")
    assert len(first["caption"]) == MAX_CAPTION_CHARS and first["caption"].endswith("…")
    assert first["caption"].startswith("a very long caption a very")
    assert (rows["s.tar/000000002"]["caption"], rows["s.tar/000000002"]["url"]) == ("a dog on a sofa", None)
    assert (rows["s.tar/000000003"]["key"], rows["s.tar/000000003"]["caption"]) == ("000000003", None)
    assert rows["s.tar/000000004"]["status"] == "ok" and rows["s.tar/000000004"]["url"] is None
    table = pq.read_table(tmp_path / "out" / "results.parquet")
    assert table.column("url").to_pylist()[0] == img2dataset["url"]
    assert {"url", "key", "caption"} <= set(table.column_names)


def test_sidecars_are_bounded_and_never_unpickled(tmp_path):
    big = json.dumps({"url": "https://example.com/x.png", "pad": "x" * MAX_SIDECAR_BYTES}).encode()
    write_tar(
        tmp_path / "s.tar",
        [("a.json", big), ("a.png", image_bytes(noise_image())), ("a.pkl", b"\x80\x04not really a pickle")],
    )
    rows = scan(str(tmp_path / "s.tar"), workers=0).rows
    image = next(r for r in rows if r["id"] == "s.tar/a")
    assert image["url"] is None and image["key"] == "a"  # the oversized sidecar is not read
    assert any(r["id"] == "s.tar/a.pkl" and "never loaded" in r["error"] for r in rows)
    assert from_sidecar(".json", b'["a list"]') == {} and from_sidecar(".json", b'{"url": {"nested": 1}}') == {}


def test_img2dataset_parquet_columns(tmp_path):
    table = pa.table(
        {
            "url": ["https://a.example.org/1.jpg", "https://b.example.net/2.jpg"],
            "key": ["000000010", "000000011"],
            "caption": ["a red car", None],
            "jpg": [image_bytes(noise_image(seed=1), "JPEG"), image_bytes(noise_image(seed=2), "JPEG")],
        }
    )
    pq.write_table(table, tmp_path / "part.parquet")
    records = list(iter_records(str(tmp_path / "part.parquet")))
    assert [r.id for r in records] == ["part.parquet/000000010", "part.parquet/000000011"]
    assert [(r.url, r.key, r.caption) for r in records] == [
        ("https://a.example.org/1.jpg", "000000010", "a red car"),
        ("https://b.example.net/2.jpg", "000000011", None),
    ]
    assert records[0].decoded().format == "JPEG"


def test_struct_cells_use_their_path_in_the_id(tmp_path):
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [
        {"bytes": image_bytes(noise_image(seed=1)), "path": "imgs/cat.png"},
        {"bytes": image_bytes(noise_image(seed=2)), "path": None},
    ]
    pq.write_table(pa.table({"image": pa.array(cells, image_type)}), tmp_path / "hf.parquet")
    assert [r.id for r in iter_records(str(tmp_path / "hf.parquet"))] == ["hf.parquet/cat.png", "hf.parquet/1"]
