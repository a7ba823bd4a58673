"""The bank of known synthetic images: round trip on disk, refusals, factories, search and clear errors."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from audit.bank.index import TRAIN_PER_LIST, Bank, BankError, build_index, tune_index

SPEC = "open_clip:ViT-B-32/laion2b_s34b_b79k"
DIM = 32


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def perturbed(x: np.ndarray, noise: float, seed: int = 1) -> np.ndarray:
    """Copies of `x` moved by noise of norm about `noise`, renormalised."""
    y = x + np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32) * noise / np.sqrt(x.shape[1])
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def rows(n: int, label: str | None = "gen3") -> list[dict]:
    return [
        {
            "id": f"img_{i:04d}",
            "uri": f"file:///bank/img_{i:04d}.png",
            "label": label,
            "sha256": f"{i:064x}",
            "phash": f"{i * 0x9E3779B97F4A7C15 % 2**64:016x}",
        }
        for i in range(n)
    ]


def filled_bank(path, n=50, factory="Flat") -> Bank:
    bank = Bank.create(path, DIM, SPEC, factory)
    bank.add(unit(n), rows(n), embedder_spec=SPEC)
    bank.save()
    return bank


def test_round_trip_keeps_vectors_metadata_and_info(tmp_path):
    bank = Bank.create(tmp_path / "bank", DIM, SPEC)
    first = bank.add(unit(30), rows(30), embedder_spec=SPEC)
    second = bank.add(unit(20, seed=5), rows(20, label="sdxl"), embedder_spec=SPEC)
    bank.save()
    assert first.tolist() == list(range(30)) and second.tolist() == list(range(30, 50))

    reopened = Bank.open(tmp_path / "bank")
    info = reopened.info()
    assert (len(reopened), info["size"], info["dim"], info["embedder"], info["factory"]) == (50, 50, DIM, SPEC, "Flat")
    assert info["labels"] == {"gen3": 30, "sdxl": 20}
    assert info["bytes_on_disk"] > 50 * DIM * 4
    assert reopened.meta(7) == {"bank_id": 7, **rows(30)[7]}
    assert reopened.sha256s() == {f"{i:064x}" for i in range(30)}
    similarities, ids = reopened.search(unit(30)[:5], k=2)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(similarities[:, 0], 1.0, atol=1e-5) and (similarities[:, 1] < 0.9).all()
    stored = json.loads((tmp_path / "bank" / "bank.json").read_text())
    assert (stored["count"], stored["embedder"], stored["metric"], stored["version"]) == (50, SPEC, "inner_product", 1)


def test_changes_reach_disk_only_on_save_and_leave_no_temporary_files(tmp_path):
    bank = filled_bank(tmp_path, n=10)
    bank.add(unit(5, seed=9), rows(5), embedder_spec=SPEC)
    assert len(Bank.open(tmp_path)) == 10
    bank.save()
    assert len(Bank.open(tmp_path)) == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.json", "index.faiss", "meta.parquet"]


def test_create_refuses_to_overwrite_a_bank(tmp_path):
    filled_bank(tmp_path, n=5)
    with pytest.raises(BankError, match="refusing to overwrite the bank"):
        Bank.create(tmp_path, DIM, SPEC)
    assert len(Bank.open(tmp_path)) == 5


@pytest.mark.parametrize(
    "vectors, meta, spec, message",
    [
        (unit(3, dim=16), rows(3), SPEC, r"must be n x 32 \(the bank's dim\), got shape \(3, 16\)"),
        (unit(3), rows(3), "open_clip:ViT-L-14/openai", "embeddings of different models are incomparable"),
        (unit(3) * 2, rows(3), SPEC, "must be L2-normalised"),
        (unit(3), rows(2), SPEC, "3 vectors but 2 metadata rows"),
        (unit(1), [{"id": "a", "colour": "red"}], SPEC, r"unknown metadata field\(s\) \['colour'\]"),
        (unit(1), [{"uri": "x"}], SPEC, "needs a string 'id'"),
        (unit(1), [{"id": "a", "phash": "xyz"}], SPEC, "must be 16 hex digits"),
    ],
)
def test_add_refuses_incompatible_input_and_changes_nothing(tmp_path, vectors, meta, spec, message):
    bank = filled_bank(tmp_path, n=4)
    with pytest.raises(BankError, match=message):
        bank.add(vectors, meta, embedder_spec=spec)
    assert len(bank) == 4 and bank.info()["size"] == 4


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8"])
def test_factories_find_perturbed_copies(tmp_path, factory):
    database = unit(1000)
    bank = Bank.create(tmp_path, DIM, SPEC, factory)
    bank.add(database, rows(1000), embedder_spec=SPEC)
    bank.save()
    reopened = Bank.open(tmp_path)
    stored = json.loads((tmp_path / "bank.json").read_text())
    if factory.startswith("IVF"):  # trained on a bounded sample of the first add
        assert stored["trained"] and stored["trained_on"] == 16 * TRAIN_PER_LIST < 1000
    else:
        assert stored["trained"] and stored["trained_on"] is None
    _, ids = reopened.search(perturbed(database[::10], noise=0.3), k=1)
    assert (ids[:, 0] == np.arange(0, 1000, 10)).mean() == 1.0


def test_ivf_bank_with_too_few_vectors_to_train_says_what_to_do(tmp_path):
    bank = Bank.create(tmp_path, DIM, SPEC, "IVF64,Flat")
    with pytest.raises(BankError, match=r"needs at least 64 vectors \(ideally 2496\), got 10: use factory 'Flat'"):
        bank.add(unit(10), rows(10), embedder_spec=SPEC)
    assert len(bank) == 0 and not bank.info()["trained"]


def test_pq_bank_with_too_few_vectors_to_train_says_what_to_do(tmp_path):
    bank = Bank.create(tmp_path, DIM, SPEC, "PQ8")
    with pytest.raises(
        BankError, match=r"could not train factory 'PQ8' on 100 vectors \(.*256.*\): use factory 'Flat'"
    ):
        bank.add(unit(100), rows(100), embedder_spec=SPEC)


def test_bad_factory_string(tmp_path):
    with pytest.raises(BankError, match="bad faiss factory string 'Bogus7'"):
        Bank.create(tmp_path, DIM, SPEC, "Bogus7")
    assert not (tmp_path / "bank.json").exists()


def test_search_params_default_and_override():
    ivf_index, hnsw_index = build_index(DIM, "IVF64,Flat"), build_index(DIM, "HNSW32")
    tune_index(ivf_index)
    tune_index(hnsw_index)
    assert faiss.extract_index_ivf(ivf_index).nprobe == 16 and hnsw_index.hnsw.efSearch == 64
    tune_index(ivf_index, nprobe=4)
    tune_index(hnsw_index, ef_search=200)
    assert faiss.extract_index_ivf(ivf_index).nprobe == 4 and hnsw_index.hnsw.efSearch == 200


def test_search_on_an_empty_bank_and_with_k_beyond_its_size(tmp_path):
    bank = Bank.create(tmp_path, DIM, SPEC)
    similarities, ids = bank.search(unit(2), k=3)
    assert ids.tolist() == [[-1] * 3] * 2 and np.isneginf(similarities).all()
    bank.add(unit(2), rows(2), embedder_spec=SPEC)
    similarities, ids = bank.search(unit(1), k=3)
    assert ids[0].tolist()[:2] == [0, 1] and ids[0, 2] == -1 and np.isneginf(similarities[0, 2])


def test_phash_search_returns_nearest_hash_within_the_bound(tmp_path):
    bank = filled_bank(tmp_path, n=20)
    target = int(rows(20)[12]["phash"], 16)
    near = f"{target ^ 0b101:016x}"  # 2 bits flipped
    far = f"{target ^ 0xFFFF:016x}"  # 16 bits flipped
    assert bank.phash_search([near, far, None], max_distance=4) == [(12, 2), None, None]
    assert Bank.open(tmp_path).phash_search([near], max_distance=1) == [None]


def test_meta_out_of_range(tmp_path):
    with pytest.raises(IndexError, match=r"no entry 5 .* holds ids 0..4"):
        filled_bank(tmp_path, n=5).meta(5)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:40])


def _edit_info(**changes):
    def edit(path):
        info = json.loads(path.read_text())
        path.write_text(json.dumps({**info, **changes}))

    return edit


@pytest.mark.parametrize(
    "file, damage, message",
    [
        (None, None, "no bank at .*: the folder does not exist"),
        ("bank.json", lambda p: p.unlink(), "no bank at .*: bank.json not found"),
        ("bank.json", lambda p: p.write_text("{not json"), "corrupt bank at .*: bank.json is unreadable"),
        ("bank.json", lambda p: p.write_text("{}"), "corrupt bank at .*: bank.json lacks version, embedder"),
        ("bank.json", _edit_info(version=99), "has format version 99; this autophagy-audit reads version 1"),
        (
            "bank.json",
            _edit_info(count=6),
            "corrupt bank at .*: index.faiss holds 5 vectors, meta.parquet 5 rows, bank.json says 6",
        ),
        ("bank.json", _edit_info(dim=64), "corrupt bank at .*: index.faiss has dim 32"),
        ("index.faiss", lambda p: p.unlink(), "corrupt bank at .*: index.faiss not found"),
        ("index.faiss", _truncate, "corrupt bank at .*: index.faiss is unreadable"),
        ("meta.parquet", _truncate, "corrupt bank at .*: meta.parquet is unreadable"),
    ],
)
def test_missing_or_corrupt_bank_gives_one_line_error(tmp_path, file, damage, message):
    filled_bank(tmp_path / "bank", n=5)
    target = tmp_path / ("nowhere" if file is None else "bank")
    if damage:
        damage(target / file)
    with pytest.raises(BankError, match=message) as raised:
        Bank.open(target)
    assert "\n" not in str(raised.value) and str(target) in str(raised.value)
