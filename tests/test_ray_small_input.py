"""The Ray engine hands a small source to the local engine when Ray would be started for that scan
alone (Ray's start-up costs more than it saves on one machine), says so, and counts sources cheaply."""

from __future__ import annotations

import logging
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit import ScanConfig, scan
from audit.demo import build_demo_folder
from tests.conftest import image_bytes, noise_image

ray = pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'autophagy-audit[ray]'")
from audit.engine.ray_engine import Shard, count_images, plan_shards, ray_scan  # noqa: E402


def test_a_small_source_is_scanned_by_the_local_engine_without_starting_ray(tmp_path, caplog):
    folder = build_demo_folder(tmp_path / "demo")
    if ray.is_initialized():
        ray.shutdown()
    with caplog.at_level(logging.WARNING, logger="audit.engine.ray_engine"):
        result = ray_scan(str(folder), tmp_path / "ray", num_workers=1)
    assert not ray.is_initialized()
    assert "scanned with the local engine" in caplog.text
    assert result.rows == scan(str(folder), tmp_path / "local", workers=0).rows
    assert not (tmp_path / "ray" / "parts").exists() and (tmp_path / "ray" / "results.parquet").exists()


def test_images_are_counted_per_shard_up_to_the_limit(tmp_path):
    for s in range(3):
        with tarfile.open(tmp_path / f"{s}.tar", "w") as tar:
            for i in range(4):
                path = tmp_path / f"x{i}.png"
                path.write_bytes(image_bytes(noise_image(size=(8, 8), seed=i)))
                tar.add(path, arcname=f"{i}.png")
    tars = plan_shards(str(tmp_path / "{0..2}.tar"), ScanConfig().resolved())
    assert count_images(tars, 100) == 12
    assert count_images(tars, 5) in (5, 6, 7, 8)  # stops in the shard that reaches the limit
    pq.write_table(pa.table({"image": [b"x"] * 7}), tmp_path / "rows.parquet")
    assert count_images([Shard("rows", str(tmp_path / "rows.parquet"))], 100) == 7
    assert count_images([Shard("hf", "hf:some/dataset")], 100) is None
    assert count_images([Shard("broken", str(tmp_path / "missing.tar"))], 100) is None
