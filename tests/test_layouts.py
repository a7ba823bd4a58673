"""Folders as the tools people use write them, scanned by the name a user would give: an img2dataset
output folder (img2dataset itself on `file://` URLs, and the same layout written with webdataset's
TarWriter), a webdataset folder of shards, a Hugging Face `save_to_disk` folder and `to_parquet` file,
dictionary-encoded image columns; ambiguous folders name the spec that works; `--paths-under`.
Results are read back with duckdb, as a data engineer would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit.cli import main
from audit.sources import SourceError, iter_records
from tests.conftest import image_bytes, noise_image

wds = pytest.importorskip("webdataset", reason="webdataset (the dev extra) writes the shards")
duckdb = pytest.importorskip("duckdb", reason="duckdb (the dev extra) reads the results")

A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Model hash: 31e35c80fc"


def _png(seed: int, marked: bool = False) -> bytes:
    info = PngInfo()
    if marked:
        info.add_text("parameters", A1111)
    return image_bytes(noise_image(seed=seed), "PNG", pnginfo=info)


def _scan(*args) -> tuple[int, str, dict | None]:
    """(exit code, output, summary) of `audit scan ARGS --format json`."""
    result = CliRunner().invoke(
        main, ["scan", *map(str, args), "--workers", "0", "--quiet", "--format", "json", "--detectors", "metadata"]
    )
    summary = json.loads(result.stdout) if result.stdout.startswith("{") else None  # a usage error prints none
    return result.exit_code, result.output, summary


def _query(out, sql: str) -> list[tuple]:
    """duckdb over the scan's results.parquet, as `results`."""
    path = str(out / "results.parquet").replace("'", "''")
    return duckdb.sql(sql.replace("results", f"read_parquet('{path}')")).fetchall()


def _img2dataset_layout(root, shards: list[list[bytes]]) -> None:
    """What img2dataset writes with output_format=webdataset: per shard NNNNN.tar (samples
    NNNNNNNNN.jpg/.json/.txt via webdataset's TarWriter), NNNNN.parquet (url, key, status, ...) and
    NNNNN_stats.json."""
    root.mkdir()
    for s, images in enumerate(shards):
        keys = [f"{s:05d}{i:04d}" for i in range(len(images))]
        with wds.TarWriter(str(root / f"{s:05d}.tar")) as sink:
            for key, data in zip(keys, images):
                sink.write(
                    {
                        "__key__": key,
                        "png": data,
                        "txt": f"caption {key}",
                        "json": {"url": f"https://example.org/{key}.png", "key": key, "status": "success"},
                    }
                )
        pq.write_table(
            pa.table(
                {
                    "url": [f"https://example.org/{k}.png" for k in keys],
                    "key": keys,
                    "status": ["success"] * len(keys),
                    "error_message": [None] * len(keys),
                }
            ),
            root / f"{s:05d}.parquet",
        )
        (root / f"{s:05d}_stats.json").write_text(json.dumps({"count": len(keys), "successes": len(keys)}))


def test_img2dataset_folder_is_scanned_as_its_shards(tmp_path):
    out_dir = tmp_path / "i2d_out"
    _img2dataset_layout(out_dir, [[_png(0), _png(1, marked=True)], [_png(2)]])
    code, output, summary = _scan(out_dir, "--out", tmp_path / "o")
    assert code == 0, output
    assert summary["counts"]["total"] == 3 and summary["counts"]["flagged"] == 1
    assert summary["source_files"]["skipped_non_images"] == 0
    assert summary["source_files"]["metadata_files"] == 4  # two .parquet tables, two _stats.json
    assert summary["source_files"]["layout"] == "img2dataset output (webdataset shards)"
    rows = _query(tmp_path / "o", "SELECT id, url, caption, generator FROM results ORDER BY seq")
    assert rows[1] == ("00000.tar/000000001", "https://example.org/000000001.png", "caption 000000001", "SDXL")


@pytest.mark.slow
def test_img2dataset_itself_on_file_urls(tmp_path):
    """img2dataset downloads `file://` URLs into its usual folder; `audit scan FOLDER` reads its shards."""
    pytest.importorskip("img2dataset", reason="img2dataset is not installed (pip install img2dataset)")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        (images / f"{i}.png").write_bytes(_png(i, marked=i == 0))
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"file://{images / f'{i}.png'}\n" for i in range(5)) + f"file://{images}/missing.png\n")
    script = (
        f"from img2dataset import download; download(url_list={str(urls)!r}, "
        f"output_folder={str(tmp_path / 'i2d_out')!r}, output_format='webdataset', "
        "processes_count=1, thread_count=2, number_sample_per_shard=3, resize_mode='no', "
        "distributor='multiprocessing', timeout=5, retries=0, disable_all_reencoding=True)"
    )
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True, timeout=300)
    names = sorted(os.listdir(tmp_path / "i2d_out"))
    assert {"00000.tar", "00000.parquet", "00000_stats.json", "00001.tar"} <= set(names)

    code, output, summary = _scan(tmp_path / "i2d_out", "--out", tmp_path / "o")
    assert code == 0, output
    assert summary["counts"] == {**summary["counts"], "total": 5, "error": 0, "flagged": 1}
    assert summary["source_files"]["skipped_non_images"] == 0
    assert summary["source_files"]["metadata_files"] == sum(n.endswith((".parquet", "_stats.json")) for n in names)
    urls_seen = {row[0] for row in _query(tmp_path / "o", "SELECT url FROM results")}
    assert urls_seen == {f"file://{images / f'{i}.png'}" for i in range(5)}


def test_webdataset_folder_of_shards_beside_a_readme(tmp_path):
    shards = tmp_path / "wds"
    shards.mkdir()
    for s in range(2):
        with wds.TarWriter(str(shards / f"shard-{s:06d}.tar")) as sink:
            for i in range(3):
                sink.write({"__key__": f"s{s}_{i}", "png": _png(10 * s + i), "txt": "a photo"})
    (shards / "README.md").write_text("two shards\n")
    code, output, summary = _scan(shards, "--out", tmp_path / "o")
    assert code == 0, output
    assert summary["counts"]["total"] == 6 and summary["source_files"]["skipped_non_images"] == 1
    assert summary["source_files"]["layout"] == "webdataset shards"


def test_save_to_disk_folder_without_the_hf_prefix(tmp_path):
    datasets = pytest.importorskip("datasets")
    images = [{"bytes": _png(i, marked=i == 2), "path": None} for i in range(4)]  # the file's bytes, metadata kept
    dataset = datasets.Dataset.from_dict(
        {"image": images, "text": [f"t{i}" for i in range(4)]},
        features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")}),
    )
    dataset.save_to_disk(str(tmp_path / "hf_saved"))
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(tmp_path / "hf_dict"))

    code, output, summary = _scan(tmp_path / "hf_saved", "--out", tmp_path / "o1")
    assert code == 0, output
    assert summary["counts"]["total"] == 4 and summary["counts"]["flagged"] == 1
    assert summary["source_files"]["layout"] == "Hugging Face save_to_disk folder"
    code, output, summary = _scan(tmp_path / "hf_dict", "--out", tmp_path / "o2")
    assert code == 0 and summary["counts"]["total"] == 4, output  # the train split


def test_to_parquet_paths_resolve_under_paths_under_and_stay_confined(tmp_path):
    """`datasets.to_parquet` of a local imagefolder records each image's path, not its bytes; a copy of
    the parquet file elsewhere needs `--paths-under`, and paths outside that folder are still refused."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "photos" / "train"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(_png(i, marked=i == 1))
    dataset = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "photos"), split="train")
    elsewhere = tmp_path / "exported"
    elsewhere.mkdir()
    dataset.to_parquet(str(elsewhere / "train.parquet"))
    assert pq.read_table(elsewhere / "train.parquet").column("image")[0].as_py()["bytes"] is None

    code, _, summary = _scan(elsewhere / "train.parquet", "--out", tmp_path / "o1")
    assert code == 2 and summary["counts"]["error"] == 3  # the gate: no image could be read
    assert _query(tmp_path / "o1", "SELECT DISTINCT error_kind FROM results") == [("outside_source",)]
    code, output, summary = _scan(
        elsewhere / "train.parquet", "--out", tmp_path / "o2", "--paths-under", tmp_path / "photos"
    )
    assert code == 0 and summary["counts"] == {**summary["counts"], "ok": 3, "flagged": 1}, output
    (tmp_path / "other").mkdir()
    _, _, summary = _scan(elsewhere / "train.parquet", "--out", tmp_path / "o3", "--paths-under", tmp_path / "other")
    assert summary["counts"]["error"] == 3  # still confined: the cells lead out of --paths-under


def test_relative_path_cells_resolve_under_paths_under(tmp_path):
    (tmp_path / "root" / "imgs").mkdir(parents=True)
    for i in range(2):
        (tmp_path / "root" / "imgs" / f"{i}.png").write_bytes(_png(i))
    (tmp_path / "meta").mkdir()
    pq.write_table(
        pa.table({"file_name": ["imgs/0.png", "imgs/1.png", "../escape.png"]}), tmp_path / "meta" / "index.parquet"
    )
    records = list(iter_records(str(tmp_path / "meta" / "index.parquet"), paths_under=str(tmp_path / "root")))
    assert [r.read_bytes() is not None for r in records] == [True, True, False]
    assert records[2].error.startswith("outside the source")
    with pytest.raises(SourceError, match="paths-under"):
        list(iter_records(str(tmp_path / "meta" / "index.parquet"), paths_under=str(tmp_path / "nowhere")))


@pytest.mark.parametrize("column", ["bytes", "paths"])
def test_dictionary_encoded_image_columns(tmp_path, column):
    (tmp_path / "0.png").write_bytes(_png(0))
    (tmp_path / "1.png").write_bytes(_png(1, marked=True))
    values = [_png(0), _png(1, marked=True), _png(0)] if column == "bytes" else ["0.png", "1.png", "0.png"]
    table = pa.table({"image": pa.array(values).dictionary_encode(), "label": [0, 1, 0]})
    assert pa.types.is_dictionary(table.schema.field("image").type)
    pq.write_table(table, tmp_path / "data.parquet")
    code, output, summary = _scan(tmp_path / "data.parquet", "--out", tmp_path / "o")
    assert code == 0, output
    assert (summary["counts"]["ok"], summary["counts"]["flagged"]) == (3, 1)


def test_ambiguous_folder_names_the_spec_that_works(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    with wds.TarWriter(str(mixed / "a.tar")) as sink:
        sink.write({"__key__": "x", "png": _png(0)})
    pq.write_table(pa.table({"image": [_png(1), _png(2)]}), mixed / "b.parquet")
    code, output, _ = _scan(mixed, "--out", tmp_path / "o")
    assert code == 2 and f"'{mixed}/*.tar'" in output and f"'{mixed}/*.parquet'" in output.replace("\n", "")
    code, output, summary = _scan(f"{mixed}/*.parquet", "--out", tmp_path / "o2")
    assert code == 0 and summary["counts"]["total"] == 2, output

    (mixed / "b.parquet").unlink()
    (mixed / "loose.png").write_bytes(_png(3))
    code, output, _ = _scan(mixed, "--out", tmp_path / "o3")
    assert code == 2 and f"'{mixed}/*.tar'" in output.replace("\n", "")


def test_no_images_names_the_shards_one_folder_down(tmp_path):
    parent = tmp_path / "downloads"
    _img2dataset_layout(parent.parent / "downloads_tmp", [[_png(0)]])
    parent.mkdir()
    shutil.move(str(parent.parent / "downloads_tmp"), str(parent / "laion_part"))
    (parent / "notes.txt").write_text("where the shards came from\n")
    code, output, _ = _scan(parent, "--out", tmp_path / "o")
    output = output.replace("\n", "")
    assert code == 2 and "laion_part/*.tar" in output


def test_distributed_scans_plan_the_same_shards(tmp_path):
    """The Ray engine's shards of a folder come from the same layout rules as the local scan."""
    from audit.sources import is_dataset, shard_files

    _img2dataset_layout(tmp_path / "i2d_out", [[_png(0)], [_png(1)]])
    assert shard_files(str(tmp_path / "i2d_out")) == [str(tmp_path / "i2d_out" / f"0000{s}.tar") for s in (0, 1)]
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "state.json").write_text("{}")
    assert is_dataset(str(tmp_path / "saved")) and shard_files(str(tmp_path / "saved")) is None
