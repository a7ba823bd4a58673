"""`audit export`: lists of dropped or kept items, and clean shards that rescan with nothing
flagged that was dropped and everything else byte-identical."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit import scan
from audit.cli import main
from audit.export import sample_key
from tests.conftest import image_bytes, noise_image


def _marked(seed: int) -> bytes:
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    return image_bytes(noise_image(seed=seed), "PNG", pnginfo=info)


def _samples():
    """(key, image bytes, marked) for 8 samples, every third one marked by generator metadata."""
    return [(f"{i:05d}", _marked(i) if i % 3 == 0 else image_bytes(noise_image(seed=i)), i % 3 == 0) for i in range(8)]


@pytest.fixture
def shard_scan(tmp_path):
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for key, data, _ in _samples():
            for name, payload in ((f"{key}.png", data), (f"{key}.json", json.dumps({"key": key}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    return tmp_path


def _export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_lists_of_dropped_and_kept_items(shard_scan):
    assert _export(shard_scan / "out", "--to", shard_scan / "drop.txt").exit_code == 0
    assert (shard_scan / "drop.txt").read_text().split() == ["s.tar/00000", "s.tar/00003", "s.tar/00006"]  # sample keys
    assert _export(shard_scan / "out", "--to", shard_scan / "keep.txt", "--keep").exit_code == 0
    assert len((shard_scan / "keep.txt").read_text().split()) == 5


def test_clean_shards_rescan_clean_and_byte_identical(shard_scan):
    result = _export(shard_scan / "out", "--write-shards", shard_scan / "clean")
    assert result.exit_code == 0, result.output
    before = {r["id"]: r["sha256"] for r in scan(str(shard_scan / "s.tar"), workers=0).rows if not r["flagged"]}
    after = scan(str(shard_scan / "clean" / "s.tar"), workers=0).rows
    assert not any(r["flagged"] for r in after)
    assert {r["id"]: r["sha256"] for r in after} == before
    with tarfile.open(shard_scan / "clean" / "s.tar") as tar:  # the sidecars of dropped samples went too
        assert sorted(tar.getnames()) == sorted(
            f"{k}.{ext}" for k, _, marked in _samples() if not marked for ext in ("png", "json")
        )


def test_clean_parquet(tmp_path):
    samples = _samples()
    pq.write_table(
        pa.table({"key": [k for k, _, _ in samples], "image": [d for _, d, _ in samples]}), tmp_path / "t.parquet"
    )
    scan(str(tmp_path / "t.parquet"), tmp_path / "out", workers=0)
    assert _export(tmp_path / "out", "--write-shards", tmp_path / "clean", "--drop", "flagged").exit_code == 0
    clean = pq.read_table(tmp_path / "clean" / "t.parquet").to_pylist()
    assert [r["key"] for r in clean] == [k for k, _, marked in samples if not marked]
    assert [r["image"] for r in clean] == [d for _, d, marked in samples if not marked]


def test_clean_shards_need_shards_and_the_cli_needs_something_to_do(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(_marked(1))
    scan(str(tmp_path / "src"), tmp_path / "out", workers=0)
    refused = _export(tmp_path / "out", "--write-shards", tmp_path / "clean")
    assert refused.exit_code == 2 and "tar" in refused.output
    assert _export(tmp_path / "out").exit_code == 2
    assert _export(tmp_path / "out", "--to", tmp_path / "list.txt").exit_code == 0
    assert (tmp_path / "list.txt").read_text().strip() == str(tmp_path / "src" / "a.png")


def test_sample_keys_are_webdataset_keys():
    assert sample_key("dir/000123.jpg") == "dir/000123" and sample_key("000123.seg.png") == "000123"
