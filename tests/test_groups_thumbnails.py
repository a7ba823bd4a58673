"""The breakdown by shard, folder and URL domain (summary and reports, `--group-by`), and thumbnails in
report.html for folder, tar and parquet sources (with the reason where there is none)."""

from __future__ import annotations

import io
import json
import re
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit.cli import main
from audit.engine.local import scan
from audit.report.groups import breakdown
from tests.conftest import image_bytes, noise_image

A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: sd_xl_base_1.0"


def _marked(seed: int) -> bytes:
    info = PngInfo()
    info.add_text("parameters", A1111)
    return image_bytes(noise_image((64, 64), seed=seed), pnginfo=info)


def _plain(seed: int) -> bytes:
    return image_bytes(noise_image((64, 64), seed=seed))


def _shards(folder) -> None:
    """s0.tar: 1 of 3 marked (from cdn.bad.example); s1.tar: 2 of 2 marked (from bad.example and good.example)."""
    samples = {
        "s0.tar": [
            (_marked(0), "https://www.bad.example/0.png"),
            (_plain(1), "https://good.example/1.png"),
            (_plain(2), "https://good.example/2.png"),
        ],
        "s1.tar": [(_marked(3), "https://bad.example/3.png"), (_marked(4), "https://good.example/4.png")],
    }
    for shard, items in samples.items():
        with tarfile.open(folder / shard, "w") as tar:
            for i, (png, url) in enumerate(items):
                for name, data in ((f"sub/{i:05d}.png", png), (f"sub/{i:05d}.json", json.dumps({"url": url}).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def test_breakdown_by_shard_and_domain_sorted_by_flagged_share(tmp_path):
    _shards(tmp_path)
    result = scan(str(tmp_path), tmp_path / "out", workers=0)
    groups = result.summary["groups"]
    assert groups["by"] == "domain"  # URLs are known
    assert [(g["group"], g["ok"], g["flagged"]) for g in groups["groups"]] == [
        ("bad.example", 2, 2),
        ("good.example", 3, 1),
    ]
    by_shard = breakdown(result.rows, "shard")
    assert [(g["group"], g["flagged_share"]) for g in by_shard["groups"]] == [("s1.tar", 1.0), ("s0.tar", 1 / 3)]
    assert [g["group"] for g in breakdown(result.rows, "folder")["groups"]] == ["sub"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Breakdown by domain (2 groups" in report and "| bad.example | 2 | 2 | 100.00% | 2 | 0 |" in report
    assert 'id="groups"' in (tmp_path / "out" / "report.html").read_text()


def test_group_by_option_and_config_file(tmp_path, monkeypatch):
    shards = tmp_path / "shards"
    shards.mkdir()
    _shards(shards)
    runner = CliRunner()
    out = tmp_path / "out"
    ran = runner.invoke(
        main, ["scan", str(shards), "--out", str(out), "--quiet", "--group-by", "shard", "--workers", "0"]
    )
    assert ran.exit_code == 0, ran.output
    assert json.loads((out / "summary.json").read_text())["groups"]["by"] == "shard"
    assert "shard: s1.tar" in ran.output
    (tmp_path / "audit.toml").write_text('group-by = "folder"\nworkers = 0\n')
    monkeypatch.chdir(tmp_path)
    ran = runner.invoke(main, ["scan", str(shards), "--out", str(tmp_path / "out2"), "--quiet"])
    assert ran.exit_code == 0, ran.output
    assert json.loads((tmp_path / "out2" / "summary.json").read_text())["groups"]["by"] == "folder"


def test_default_grouping_fits_the_source():
    def default_by(row: dict) -> str:
        return breakdown([{**row, "status": "error"}])["by"]

    assert default_by({"id": "a/x.png", "uri": "/d/a/x.png"}) == "folder"
    assert default_by({"id": "s.tar/k", "uri": "/d/s.tar#k.png"}) == "shard"
    assert default_by({"id": "s.tar/k", "uri": "/d/s.tar#k.png", "url": "http://x.org/a"}) == "domain"


def _thumbs(html: str) -> int:
    return len(re.findall(r'<img class="thumb" alt="" src="data:image/jpeg;base64,', html))


def test_thumbnails_for_folder_tar_and_parquet_sources(tmp_path):
    _shards(tmp_path)
    scan(str(tmp_path), tmp_path / "tar-out", workers=0)
    assert _thumbs((tmp_path / "tar-out" / "report.html").read_text()) == 3
    pq.write_table(
        pa.table({"url": ["https://e.org/a.png", "https://e.org/b.png"], "png": [_marked(5), _plain(6)]}),
        tmp_path / "p.parquet",
    )
    scan(str(tmp_path / "p.parquet"), tmp_path / "pq-out", workers=0)
    assert _thumbs((tmp_path / "pq-out" / "report.html").read_text()) == 1
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "m.png").write_bytes(_marked(7))
    scan(str(tmp_path / "imgs"), tmp_path / "dir-out", workers=0)
    assert _thumbs((tmp_path / "dir-out" / "report.html").read_text()) == 1


def test_a_missing_thumbnail_says_why(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "m.png").write_bytes(_marked(7))
    result = scan(str(tmp_path / "imgs"), workers=0)
    (tmp_path / "imgs" / "m.png").unlink()  # gone since the scan
    from audit.report.html import html_report
    from audit.report.tally import Listed

    html = html_report(result.summary, Listed.of(result.rows))
    assert _thumbs(html) == 0 and "No thumbnail for 1 rows: unreadable" in html
