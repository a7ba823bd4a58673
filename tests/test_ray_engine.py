"""The Ray engine gives the local engine's rows (order-independent) on a folder of hostile and
marked files and on webdataset shards with hostile members; resumes per shard; embeds in an
actor; gives the same rows when an actor is killed mid-shard; and says what to install when Ray is
missing. Ray runs here, started once for the module."""

from __future__ import annotations

import inspect
import json
import logging
import os
import pickle
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from audit import ScanConfig, scan
from audit.cli import main
from audit.demo import build_demo_folder, sample_photo
from audit.detectors.watermark import KNOWN_KEYS, embed_watermark
from audit.engine.journal import JournalMismatch
from tests.conftest import image_bytes, noise_image
from tests.test_bad_input import PIXEL_LIMIT, _Boom, _shard, corpus  # noqa: F401  (corpus is a fixture)

ray = pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'autophagy-audit[ray]'")
from audit.engine.ray_engine import ray_scan  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["id"])


@pytest.fixture
def shards(tmp_path):
    """Three webdataset shards: hostile members (pickles that would leave a marker file when
    unpickled, `..` and absolute names), a watermarked image, a broken one, a truncated shard."""
    folder = tmp_path / "shards"
    folder.mkdir()
    boom = pickle.dumps(_Boom(str(tmp_path / "UNPICKLED")))
    marked = embed_watermark(sample_photo("astronaut.png"), KNOWN_KEYS[2])
    _shard(
        folder / "shard-000.tar",
        [
            ("000/a.png", image_bytes(noise_image())),
            ("000/a.txt", b"a caption"),
            ("001/b.pkl", boom),
            ("001/b.pt", boom),
            ("../escape.png", image_bytes(noise_image())),
            ("/abs/path.png", image_bytes(noise_image())),
            ("000/a.png", image_bytes(noise_image(seed=1))),
        ],
    )
    _shard(folder / "shard-001.tar", [("002/wm.png", image_bytes(Image.fromarray(marked))), ("002/d.png", b"broken")])
    full = (folder / "shard-001.tar").read_bytes()
    (folder / "shard-002.tar").write_bytes(full[: len(full) - 1500])
    return folder


def test_folder_gives_the_local_rows(corpus, tmp_path):  # noqa: F811
    build_demo_folder(corpus / "demo")  # marked copies: watermarks, generator metadata, XMP
    config = ScanConfig(pixel_limit=PIXEL_LIMIT)
    local = scan(str(corpus), tmp_path / "local", config=config, workers=0)
    distributed = ray_scan(str(corpus), tmp_path / "ray", config=config, num_workers=2, shard_size=5)
    assert by_id(distributed.rows) == by_id(local.rows)
    assert distributed.summary == local.summary
    assert sum(r["flagged"] for r in local.rows) >= 6 and len(list((tmp_path / "ray" / "parts").glob("*.done"))) >= 7
    assert pq.read_table(tmp_path / "ray" / "results.parquet").to_pylist() == local.rows


def test_webdataset_shards_with_hostile_members(shards, tmp_path):
    spec = str(shards / "shard-{000..002}.tar")
    local = scan(spec, workers=0)
    rows = {r["id"]: r for r in ray_scan(spec, tmp_path / "ray", num_workers=2).rows}
    assert by_id(rows.values()) == by_id(local.rows)
    assert "never loaded" in rows["shard-000.tar/001/b.pkl"]["error"]
    assert "unsafe" in rows["shard-000.tar/../escape.png"]["error"]
    assert rows["shard-000.tar/000/a#1"]["status"] == "ok"  # a repeated sample key gets the local suffix
    assert rows["shard-001.tar/002/wm"]["generator"] == "SD 2.x"
    assert not (tmp_path / "UNPICKLED").exists()


def test_resume_skips_committed_shards(shards, tmp_path):
    spec, out = str(shards), tmp_path / "ray"
    first = ray_scan(spec, out, num_workers=1)
    parts = out / "parts"
    [[piece, _, _]] = json.loads((parts / "shard-000000.done").read_text())["parts"]
    kept = pq.read_table(parts / piece).to_pylist()
    for row in kept:
        row["uri"] = "from the first run"
    pq.write_table(pq.read_table(parts / piece).from_pylist(kept), parts / piece)
    (parts / "shard-000001.done").unlink()  # as if the run had stopped while scanning shard 1
    stray = parts / "shard-000001-000007.parquet"
    stray.write_bytes(b"a piece written before the stop")

    resumed = {r["id"]: r for r in ray_scan(spec, out, num_workers=1, resume=True).rows}
    assert not stray.exists()  # an uncommitted shard's files are deleted
    assert all(resumed[r["id"]]["uri"] == "from the first run" for r in kept)  # committed: not scanned again
    assert [resumed[r["id"]] for r in first.rows if r["id"].startswith("shard-001")] == [
        r for r in first.rows if r["id"].startswith("shard-001")
    ]  # uncommitted: scanned again
    with pytest.raises(JournalMismatch):
        ray_scan(spec, out, config=ScanConfig(detectors=("metadata",)), resume=True)


def test_embeddings_run_in_an_actor(tmp_path):
    folder = build_demo_folder(tmp_path / "demo")
    config = ScanConfig(embed=True, embedder="random")
    local = scan(str(folder), tmp_path / "local", config=config, workers=0)
    distributed = ray_scan(str(folder), tmp_path / "ray", config=config, num_workers=1, shard_size=6)
    assert by_id(distributed.rows) == by_id(local.rows)  # phash included: computed when embeddings run
    ok = [r for r in local.rows if r["status"] == "ok"]
    assert ok and all(r["phash"] for r in ok)
    for row in ok:
        assert np.allclose(distributed.stage.vector(row["sha256"]), local.stage.vector(row["sha256"]), atol=1e-5)


def test_cli(shards, tmp_path, monkeypatch):
    runner = CliRunner()
    args = ["scan", str(shards), "--out", str(tmp_path / "o"), "--quiet", "--format", "json"]
    result = runner.invoke(main, args + ["--engine", "ray", "--num-workers", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == scan(str(shards), workers=0).summary["counts"]
    assert runner.invoke(main, args + ["--num-workers", "2"]).exit_code == 2  # a Ray option without --engine ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    missing = runner.invoke(main, args + ["--engine", "ray"])
    assert missing.exit_code == 2 and "pip install 'autophagy-audit[ray]'" in " ".join(missing.output.split())


def test_retries_are_bounded_and_a_failure_keeps_finished_shards(shards, tmp_path, monkeypatch):
    from audit.engine import ray_engine

    asked = []
    original_map_batches = ray.data.Dataset.map_batches

    def recording(self, fn, *args, **kwargs):
        asked.append(kwargs)
        return original_map_batches(self, fn, *args, **kwargs)

    monkeypatch.setattr(ray.data.Dataset, "map_batches", recording)
    original_pipeline = ray_engine._pipeline

    def dies_after_the_first_shard(*args, **kwargs):
        tables = original_pipeline(*args, **kwargs)
        first = next(iter(tables))
        yield first
        raise ray.exceptions.RayError("Worker exit type: NODE_OUT_OF_MEMORY")

    monkeypatch.setattr(ray_engine, "_pipeline", dies_after_the_first_shard)
    out = tmp_path / "ray"
    with pytest.raises(ray_engine.ShardsFailed, match=r"gave up on \d shard.*out of memory.*--resume") as failed:
        ray_scan(str(shards), out, num_workers=1)
    named = {n for n, p in inspect.signature(original_map_batches).parameters.items() if p.kind != p.VAR_KEYWORD}
    assert asked and all(set(k) <= named for k in asked)  # no ray_remote_args: Ray deprecates them
    assert "shard-002.tar" in str(failed.value)
    monkeypatch.setattr(ray_engine, "_pipeline", original_pipeline)
    resumed = ray_scan(str(shards), out, num_workers=1, resume=True)
    assert by_id(resumed.rows) == by_id(ray_scan(str(shards), tmp_path / "fresh", num_workers=1).rows)


def test_a_shard_whose_worker_dies_at_every_start_is_given_up_after_the_retries(shards, tmp_path, monkeypatch):
    """Ray restarts dead actors and retries their tasks without end: the engine's own count of starts
    refuses the shard's start after the last retry, and the scan stops naming it."""
    from audit.engine import ray_engine

    class AlwaysDies(ray_engine.ShardScanner):  # pickled by value: travels to the actors
        def _scan(self, shard):
            if shard["index"] == 1:
                os._exit(1)
            yield from ray_engine.ShardScanner._scan(self, shard)

    monkeypatch.setattr(ray_engine, "ShardScanner", AlwaysDies)
    out = tmp_path / "ray"
    with pytest.raises(
        ray_engine.ShardsFailed,
        match=r"gave up on \d shard.*TooManyAttempts: \S*shard-001\.tar was "
        rf"started {ray_engine.MAX_TASK_RETRIES + 1} times.*--resume",
    ):
        ray_scan(str(shards), out, num_workers=1)
    starts = sorted(p.name for p in (out / "parts" / ray_engine.ATTEMPTS_DIR).glob("shard-000001*"))
    assert starts == [f"shard-000001.{n}" for n in range(1, ray_engine.MAX_TASK_RETRIES + 2)] + ["shard-000001.refused"]


def test_an_actor_killed_mid_shard_changes_nothing(tmp_path, monkeypatch):
    """An actor dies (os._exit) in the middle of a shard, after writing a piece of it: Ray restarts it,
    the shard is scanned again, and the rows are the local engine's, in the same order."""
    from audit.engine import ray_engine

    folder = tmp_path / "shards"
    folder.mkdir()
    for s in range(20):
        _shard(
            folder / f"{s:02d}.tar",
            [(f"{i}/x.png", image_bytes(noise_image(size=(8, 8), seed=10 * s + i))) for i in range(5)]
            + [("0/x.png", b"a repeated key")],
        )
    once = tmp_path / "killed"

    class DiesOnce(ray_engine.ShardScanner):  # pickled by value: the closure travels to the actors
        piece_rows = 2

        def _scan(self, shard):
            for number, table in enumerate(ray_engine.ShardScanner._scan(self, shard)):
                if shard["index"] == 7 and number == 2 and not once.exists():
                    once.touch()
                    os._exit(1)
                yield table

    monkeypatch.setattr(ray_engine, "ShardScanner", DiesOnce)
    out = tmp_path / "ray"
    result = ray_scan(str(folder / "{00..19}.tar"), out, num_workers=2, batch_size=2)
    local = scan(str(folder / "{00..19}.tar"), workers=0)
    assert once.exists()
    assert result.rows == local.rows and pq.read_table(out / "results.parquet").to_pylist() == local.rows
    assert sum(r["id"].endswith("#1") for r in result.rows) == 20
    listed = {name for done in (out / "parts").glob("*.done") for name, _, _ in json.loads(done.read_text())["parts"]}
    assert {p.name for p in (out / "parts").glob("*.parquet")} == listed  # no piece of a dead attempt is left


@pytest.mark.parametrize("split", [[[0, 1, 2], [3, 4, 5]], [[0, 2, 4], [1, 3], [5]]])
def test_parts_come_back_in_order_whatever_the_notices_order(tmp_path, split):
    """Pieces noticed last first and one twice, holding consecutive positions or not: the driver
    commits the shard once and reads its rows back in source order."""
    from audit.engine.ray_engine import Parts, piece_name, write_piece

    _shard(tmp_path / "a.tar", [(f"{i}.png", image_bytes(noise_image(size=(8, 8), seed=i))) for i in range(6)])
    local = scan(str(tmp_path / "a.tar"), workers=0)
    table = local.to_arrow()
    table = table.append_column("shard", pa.array([0] * 6)).append_column("shard_rows", pa.array([6] * 6))
    parts = Parts(tmp_path / "parts", {"scan": 1}, resume=False, schema=local.to_arrow().schema)
    notices = [
        write_piece(str(parts.folder), table.take(rows), piece_name(0, f"{n:06d}")) for n, rows in enumerate(split)
    ]
    for notice in [notices[-1], *reversed(notices), notices[0]]:  # a repeat before and after the commit
        parts.take(notice)
    parts.commit_empty([0])
    assert parts.rows_done == 6
    assert [row for t in parts.ordered_batches(1, None) for row in t.to_pylist()] == local.rows


def test_a_refused_resume_changes_nothing_and_a_missing_piece_is_scanned_again(shards, tmp_path):
    spec, out = str(shards), tmp_path / "ray"
    first = by_id(ray_scan(spec, out, num_workers=1).rows)
    before = {str(p): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with pytest.raises(JournalMismatch):
        ray_scan(spec, out, config=ScanConfig(detectors=("metadata",)), resume=True)
    assert {str(p): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    [[piece, _, _]] = json.loads((out / "parts" / "shard-000001.done").read_text())["parts"]
    (out / "parts" / piece).unlink()  # a committed shard's piece lost
    assert by_id(ray_scan(spec, out, num_workers=1, resume=True).rows) == first
    assert list((out / "parts").glob("shard-000001.done.rejected-*"))
