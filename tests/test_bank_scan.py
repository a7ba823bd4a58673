"""End to end: `audit bank add` a folder, then scan copies (JPEG q=75, resized 0.5x) of every
member among real photographs: every copy is found, no photograph is flagged, with the real CLIP
encoder (ONNX) and with a random embedder, whose similarities are meaningless (every pair scores
~0.98) and so never count: there the bank's perceptual hashes decide alone. Near-duplicate
clusters within a scan count unflagged copies of flagged images."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from audit import ScanConfig, scan
from audit.cli import main
from tests.conftest import shared_data

MEMBERS = 6


@pytest.fixture(scope="module", params=["real", "random"])
def bank_and_queries(request, tmp_path_factory):
    embedder = request.getfixturevalue("clip_encoder") if request.param == "real" else "random"
    root = tmp_path_factory.mktemp("bank")
    members = root / "known_synthetic"
    queries = root / "scraped"
    members.mkdir()
    queries.mkdir()
    for path in sorted(shared_data("ai-watermark").glob("sd1__edmundhong_sample_*.png"))[:MEMBERS]:
        image = Image.open(path).convert("RGB")
        image.save(members / path.name)
        image.save(queries / f"{path.stem}_q75.jpg", quality=75)
        image.resize((image.width // 2, image.height // 2), Image.BICUBIC).save(queries / f"{path.stem}_half.png")
    for path in sorted(shared_data("real-kodak").glob("kodim*.png")):
        Image.open(path).save(queries / path.name)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "bank",
            "add",
            str(members),
            "--bank",
            str(root / "bank"),
            "--label",
            "gen1",
            "--embedder",
            embedder,
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "bank", queries, embedder


def test_bank_info_and_idempotent_add(bank_and_queries, tmp_path):
    bank, _, embedder = bank_and_queries
    runner = CliRunner()
    info = json.loads(runner.invoke(main, ["bank", "info", "--bank", str(bank)]).output)
    assert info["size"] == MEMBERS and info["embedder"] == embedder and info["factory"] == "Flat"
    again = runner.invoke(main, ["bank", "add", str(bank.parent / "known_synthetic"), "--bank", str(bank), "--quiet"])
    assert again.exit_code == 0 and "0 added" in again.output
    missing = runner.invoke(main, ["bank", "info", "--bank", str(tmp_path / "none")])
    assert missing.exit_code == 2


def test_copies_of_every_member_are_found_and_no_photograph(bank_and_queries):
    bank, queries, embedder = bank_and_queries
    result = scan(str(queries), config=ScanConfig(detectors=(), bank=str(bank)), workers=0)
    rows = {r["id"]: r for r in result.rows}
    copies = [i for i in rows if "_q75" in i or "_half" in i]
    assert len(copies) == 2 * MEMBERS
    for i in copies:
        assert rows[i]["neardup_decision"] == "synthetic" and rows[i]["hard_evidence"], (i, rows[i]["neardup_evidence"])
        assert rows[i]["tool"] == "bank:gen1"
    for i in rows:
        if i.startswith("kodim"):
            assert rows[i]["neardup_decision"] != "synthetic", (i, rows[i]["neardup_evidence"])
    assert result.summary["per_tool"] == {"bank:gen1": 2 * MEMBERS}
    if embedder == "random":  # the similarities are reported, never used
        assert all("ignored: random embedder" in rows[i]["neardup_evidence"] for i in rows if i.startswith("kodim"))
    else:  # the real encoder's similarity finds copies on its own too, not only the hashes
        by_cosine = [i for i in copies if rows[i]["neardup_evidence"].startswith("bank match")]
        assert len(by_cosine) >= MEMBERS // 2, [rows[i]["neardup_evidence"] for i in copies]


def test_duplicates_within_a_scan_count_flagged_copies(tmp_path):
    from audit.demo import sample_photo
    from audit.detectors.watermark import KNOWN_KEYS, embed_watermark

    photo = sample_photo("astronaut.png")
    marked = embed_watermark(photo, KNOWN_KEYS[2])
    Image.fromarray(marked).save(tmp_path / "a_marked.png")
    Image.fromarray(marked).save(tmp_path / "b_copy.jpg", quality=60, subsampling=2)  # mark lost, copy remains
    Image.fromarray(photo).save(tmp_path / "c_original.png")
    Image.fromarray(sample_photo("coffee.png")).save(tmp_path / "d.png")
    result = scan(str(tmp_path), config=ScanConfig(embedder="random", embed=True), workers=0)
    rows = {r["id"]: r for r in result.rows}
    assert rows["a_marked.png"]["flagged"] and not rows["b_copy.jpg"]["flagged"]
    duplicates = result.summary["duplicates"]
    assert ["a_marked.png", "b_copy.jpg", "c_original.png"] in duplicates["largest"]
    assert duplicates["flagged_copies"] == 2 and "d.png" not in duplicates["flagged_copy_ids"]


def test_a_random_embedder_links_no_distinct_photographs(tmp_path):
    """Its similarities are noise (~0.98 for any pair): within-scan clusters use the pHash alone."""
    for path in sorted(shared_data("real-kodak").glob("kodim*.png"))[:12]:
        Image.open(path).save(tmp_path / path.name)
    result = scan(str(tmp_path), config=ScanConfig(detectors=(), embedder="random", embed=True), workers=0)
    assert result.summary["duplicates"]["clusters"] == 0, result.summary["duplicates"]["largest"]
