"""Banks of perceptual hashes only (`--embedder none`): no model is loaded and nothing is cached,
copies (JPEG q75, half size, 5% centred crop) are found by pHash distance alone and distractors
are not; the bank says its kind, and hashes and embeddings never mix."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from audit import ScanConfig, scan
from audit.bank.index import Bank, BankError
from audit.bank.kinds import NO_EMBEDDER, PHASH
from audit.bank.phash import DEFAULT_PHASH_DISTANCE
from audit.cli import main
from audit.demo import sample_photo
from audit.detectors.base import NO_EVIDENCE, NOT_APPLICABLE, SYNTHETIC, EmbeddedItem
from audit.detectors.neardup import NearDupDetector

MEMBERS = ("astronaut.png", "camera.png", "chelsea.png", "coins.png", "motorcycle_left.png")
DISTRACTORS = ("brick.png", "coffee.png", "grass.png", "gravel.png", "moon.png", "rocket.jpg")
P0, P1 = "c4c62e705bb94b17", "ceadb0b887c730b8"


def flip(hex_hash: str, bits: int) -> str:
    return f"{int(hex_hash, 16) ^ ((1 << bits) - 1):016x}"


def entries(hashes: list[str], label: str = "gen1") -> list[dict]:
    return [
        {"id": f"img_{i}", "uri": f"file:///bank/img_{i}.png", "label": label, "sha256": f"{i:064x}", "phash": h}
        for i, h in enumerate(hashes)
    ]


# --- the bank --------------------------------------------------------------------------------------


def test_phash_bank_round_trip_says_its_kind(tmp_path):
    bank = Bank.create_phash(tmp_path)
    assert bank.add_hashes(entries([P0, P1])).tolist() == [0, 1]
    bank.save()
    reopened = Bank.open(tmp_path)
    info = reopened.info()
    assert (info["kind"], info["embedder"], info["size"], info["metric"]) == (PHASH, NO_EMBEDDER, 2, "hamming")
    stored = json.loads((tmp_path / "bank.json").read_text())
    assert (stored["kind"], stored["embedder"], stored["count"]) == (PHASH, NO_EMBEDDER, 2)
    assert reopened.phash_search([flip(P1, 3), flip(P0, 20), None], 8) == [(1, 3), None, None]
    assert reopened.meta(1)["phash"] == P1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.json", "index.faiss", "meta.parquet"]


def test_hashes_and_embeddings_never_mix(tmp_path):
    hashes = Bank.create_phash(tmp_path / "hashes")
    vector = np.ones((1, 4), dtype=np.float32) / 2
    with pytest.raises(BankError, match="holds perceptual hashes only .* not embeddings of 'random'"):
        hashes.add(vector, entries([P0]), embedder_spec="random")
    with pytest.raises(BankError, match="holds perceptual hashes only: search it with phash_search"):
        hashes.search(vector)
    with pytest.raises(BankError, match="needs a phash; 'img_0' has none"):
        hashes.add_hashes(entries([None]))
    embeddings = Bank.create(tmp_path / "embeddings", 4, "random")
    with pytest.raises(BankError, match="holds embeddings of 'random'; hashes alone .* cannot go into it"):
        embeddings.add_hashes(entries([P0]))
    with pytest.raises(BankError, match="a bank of hashes only is made with Bank.create_phash"):
        Bank.create(tmp_path / "other", 64, NO_EMBEDDER)


def test_a_phash_bank_missing_a_hash_is_corrupt(tmp_path):
    import pyarrow.parquet as pq

    bank = Bank.create_phash(tmp_path)
    bank.add_hashes(entries([P0]))
    bank.save()
    meta = pq.read_table(tmp_path / "meta.parquet")
    pq.write_table(meta.set_column(5, "phash", pa_nulls(1)), tmp_path / "meta.parquet")
    with pytest.raises(BankError, match="entries without a phash in a pHash bank"):
        Bank.open(tmp_path)


def pa_nulls(n: int):
    import pyarrow as pa

    return pa.array([None] * n, pa.string())


def test_detector_decides_by_phash_distance_alone(tmp_path):
    bank = Bank.create_phash(tmp_path)
    bank.add_hashes(entries([P0, P1]))
    bank.save()
    within, beyond, no_hash = NearDupDetector(tmp_path).detect(
        [
            EmbeddedItem("a", None, phash=flip(P1, DEFAULT_PHASH_DISTANCE)),
            EmbeddedItem("b", None, phash=flip(P1, DEFAULT_PHASH_DISTANCE + 1)),
            EmbeddedItem("c", None, phash=None),
        ]
    )
    assert (within.decision, within.score, within.tool) == (SYNTHETIC, 1.0, "bank:gen1")
    assert within.evidence == f"phash match d={DEFAULT_PHASH_DISTANCE} to img_1 (label gen1)"
    assert within.extra["phash_distance"] == DEFAULT_PHASH_DISTANCE and within.extra["similarity"] is None
    assert (beyond.decision, beyond.score) == (NO_EVIDENCE, None)
    assert beyond.evidence == f"no phash match within {DEFAULT_PHASH_DISTANCE} bits"
    assert (no_hash.decision, no_hash.score) == (NOT_APPLICABLE, None)


def test_hash_only_workers_hash_and_prepare_no_model_input(tmp_path):
    from audit.engine.batch import init_worker, process_batch
    from audit.engine.config import HASH_ONLY
    from audit.sources import iter_records

    config = ScanConfig(detectors=(), embedder=NO_EMBEDDER, embed=True).resolved()
    assert config.preprocess == HASH_ONLY
    for name in MEMBERS[:2]:
        Image.fromarray(sample_photo(name)).save(tmp_path / name)
    init_worker(config, config.preprocess)
    rows, prepared = process_batch(list(enumerate(iter_records(str(tmp_path)))))
    assert prepared == {}
    assert [len(row["phash"]) for row in rows] == [16, 16]


# --- end to end ------------------------------------------------------------------------------------


def _save_jpeg(image: Image.Image, path, quality: int) -> None:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("phash-bank")
    members, queries = root / "known_synthetic", root / "scraped"
    members.mkdir()
    queries.mkdir()
    for name in MEMBERS:
        image = Image.fromarray(sample_photo(name))
        stem = name.split(".")[0]
        image.save(members / f"{stem}.png")
        _save_jpeg(image, queries / f"{stem}_q75.jpg", 75)
        image.resize((image.width // 2, image.height // 2), Image.BICUBIC).save(queries / f"{stem}_half.png")
        cut_x, cut_y = round(image.width * 0.025), round(image.height * 0.025)
        image.crop((cut_x, cut_y, image.width - cut_x, image.height - cut_y)).save(queries / f"{stem}_crop.png")
    for name in DISTRACTORS:
        Image.fromarray(sample_photo(name)).save(queries / f"other_{name.split('.')[0]}.png")
    return root


@pytest.fixture(scope="module")
def phash_bank(folders):
    from audit.embedding import embedder

    loaded = []
    original = embedder.Embedder.__init__
    embedder.Embedder.__init__ = lambda self, *a, **k: loaded.append(a) or original(self, *a, **k)
    try:
        result = CliRunner().invoke(
            main,
            [
                "bank",
                "add",
                str(folders / "known_synthetic"),
                "--bank",
                str(folders / "bank"),
                "--embedder",
                "none",
                "--label",
                "gen1",
                "--workers",
                "0",
                "--quiet",
            ],
        )
    finally:
        embedder.Embedder.__init__ = original
    assert result.exit_code == 0, result.output
    assert loaded == [], "no model may be loaded for a pHash bank"
    return folders / "bank"


def test_bank_add_writes_hashes_only_and_info_says_so(phash_bank):
    assert sorted(p.name for p in phash_bank.iterdir()) == ["bank.json", "index.faiss", "meta.parquet"]
    info = json.loads(CliRunner().invoke(main, ["bank", "info", "--bank", str(phash_bank)]).output)
    assert (info["kind"], info["embedder"], info["size"], info["labels"]) == (
        "phash",
        "none",
        len(MEMBERS),
        {"gen1": len(MEMBERS)},
    )


def test_scan_finds_every_copy_and_no_distractor(phash_bank, folders):
    result = scan(str(folders / "scraped"), config=ScanConfig(detectors=(), bank=str(phash_bank)), workers=0)
    assert result.summary["config"]["embedder"] == NO_EMBEDDER
    rows = {r["id"]: r for r in result.rows}
    copies = [i for i in rows if not i.startswith("other_")]
    assert len(copies) == 3 * len(MEMBERS)
    for i in copies:
        assert rows[i]["neardup_decision"] == SYNTHETIC and rows[i]["hard_evidence"], (i, rows[i]["neardup_evidence"])
        assert rows[i]["neardup_evidence"].startswith("phash match d=") and rows[i]["tool"] == "bank:gen1"
    for i in rows:
        if i.startswith("other_"):
            assert rows[i]["neardup_decision"] == NO_EVIDENCE, (i, rows[i]["neardup_evidence"])
    duplicates = result.summary["duplicates"]  # within the scan, by hash: each member's three copies
    assert duplicates["clusters"] == len(MEMBERS) and duplicates["images_in_clusters"] == 3 * len(MEMBERS)
    assert not any(i.startswith("other_") for cluster in duplicates["largest"] for i in cluster)


def test_mixing_kinds_is_a_usage_error(phash_bank, folders, tmp_path):
    runner = CliRunner()
    into_hashes = runner.invoke(
        main,
        ["bank", "add", str(folders / "known_synthetic"), "--bank", str(phash_bank), "--embedder", "random", "--quiet"],
    )
    assert into_hashes.exit_code == 2 and "holds perceptual hashes only" in " ".join(into_hashes.output.split())
    scanned = runner.invoke(
        main,
        [
            "scan",
            str(folders / "scraped"),
            "--bank",
            str(phash_bank),
            "--embedder",
            "random",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
    )
    assert scanned.exit_code == 2 and "holds perceptual hashes only" in " ".join(scanned.output.split())
    embeddings = Bank.create(tmp_path / "embeddings", 4, "random")
    hashes_in = runner.invoke(
        main,
        [
            "bank",
            "add",
            str(folders / "known_synthetic"),
            "--bank",
            str(embeddings.path),
            "--embedder",
            "none",
            "--quiet",
        ],
    )
    assert hashes_in.exit_code == 2 and "hashes alone" in " ".join(hashes_in.output.split())
    with pytest.raises(ValueError, match="the probe detector needs a model's embeddings"):
        ScanConfig(detectors=("probe",), probe="p", embedder=NO_EMBEDDER).resolved()


def test_calibrate_measures_a_phash_bank_without_a_model(phash_bank, folders, tmp_path):
    from audit.calibrate import calibrate

    real = tmp_path / "real"
    real.mkdir()
    for path in (folders / "scraped").glob("other_*"):
        (real / path.name).write_bytes(path.read_bytes())
    result = calibrate(
        str(real),
        str(folders / "scraped"),
        tmp_path / "calib",
        config=ScanConfig(embedder=NO_EMBEDDER, bank=str(phash_bank)),
        workers=0,
    )
    assert result["embedder"] == NO_EMBEDDER and "skipped" in result["probe"]
    assert result["detectors"]["neardup"]["fp"] == 0
    assert not (tmp_path / "calib" / "embeddings").exists()
