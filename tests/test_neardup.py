"""Near-duplicate evidence: pHashes on real photographs, the detector's decision bands against a bank,
and near-duplicate clusters within a scanned set."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from audit.bank import clusters
from audit.bank.clusters import near_duplicate_clusters
from audit.bank.index import Bank, BankError
from audit.bank.phash import DEFAULT_PHASH_DISTANCE, hamming, hamming_matrix, phash_hex, to_bytes, to_uint64
from audit.detectors.base import NO_EVIDENCE, NOT_APPLICABLE, SYNTHETIC, EmbeddedItem
from audit.detectors.neardup import NearDupDetector
from tests.conftest import shared_data

SPEC = "test-embedder"
DIM = 8
P0, P1 = "c4c62e705bb94b17", "ceadb0b887c730b8"


def basis(i: int, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1
    return v


def toward(i: int, cosine: float, away: int = DIM - 1) -> np.ndarray:
    """A unit vector with the given cosine to basis vector i (the rest along basis vector `away`)."""
    return (cosine * basis(i) + np.sqrt(1 - cosine**2) * basis(away)).astype(np.float32)


def flip(hex_hash: str, bits: int) -> str:
    return f"{int(hex_hash, 16) ^ ((1 << bits) - 1):016x}"


# --- pHash -----------------------------------------------------------------------------------------


def reencoded(image: Image.Image, scale: float = 1.0, quality: int | None = None) -> np.ndarray:
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    if quality is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        image = Image.open(buffer).convert("RGB")
    return np.asarray(image)


def test_phash_survives_jpeg_and_resizing_and_separates_distinct_photos():
    paths = sorted(shared_data("real-kodak").glob("*.png"))
    assert len(paths) >= 10
    hashes = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        original = phash_hex(np.asarray(image))
        hashes.append(original)
        for variant in (
            reencoded(image, quality=75),
            reencoded(image, scale=0.5),
            reencoded(image, scale=0.5, quality=75),
        ):
            assert hamming(original, phash_hex(variant)) <= 4, path.name
    assert min(hamming(a, b) for a, b in itertools.combinations(hashes, 2)) > 10


def test_phash_format_and_input_check():
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    assert len(phash_hex(pixels)) == 16 and int(phash_hex(pixels), 16) >= 0
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        phash_hex(pixels.astype(np.float32))
    with pytest.raises(ValueError, match="must be 16 hex digits, got 'abcd'"):
        to_bytes([P0, "abcd"])


def test_hamming_and_hamming_matrix_agree():
    rng = np.random.default_rng(3)
    queries = [f"{int(v):016x}" for v in rng.integers(0, 2**63, 5, dtype=np.uint64)] + [P0]
    bank = [f"{int(v):016x}" for v in rng.integers(0, 2**63, 7, dtype=np.uint64)] + [P0, flip(P0, 3)]
    matrix = hamming_matrix(queries, to_uint64(bank))
    assert matrix.shape == (6, 9)
    assert matrix.tolist() == [[hamming(q, b) for b in bank] for q in queries]
    assert matrix[5, 7] == 0 and matrix[5, 8] == 3 and hamming("ffffffffffffffff", "0000000000000000") == 64


# --- detector --------------------------------------------------------------------------------------


@pytest.fixture
def bank_dir(tmp_path):
    bank = Bank.create(tmp_path / "bank", DIM, SPEC)
    bank.add(
        np.stack([basis(0), basis(1), basis(2)]),
        [
            {"id": "img_0042", "label": "gen3", "phash": P0},
            {"id": "img_0007", "phash": P1},
            {"id": "img_0100", "label": "sdxl"},
        ],
        embedder_spec=SPEC,
    )
    bank.save()
    return tmp_path / "bank"


def test_decision_bands(bank_dir):
    detector = NearDupDetector(bank_dir)
    hard, unlabelled, weak, none, by_phash, phash_too_far, no_embedding = detector.detect(
        [
            EmbeddedItem("a", toward(0, 0.97)),
            EmbeddedItem("b", toward(1, 0.97)),
            EmbeddedItem("c", toward(0, 0.90)),
            EmbeddedItem("d", toward(2, 0.41)),
            EmbeddedItem("e", toward(2, 0.30), phash=flip(P1, 3)),
            EmbeddedItem("f", toward(2, 0.30), phash=flip(P1, DEFAULT_PHASH_DISTANCE + 1)),
            EmbeddedItem("g", None, phash=P0),
        ]
    )
    assert (hard.decision, hard.score, hard.tool) == (SYNTHETIC, 1.0, "bank:gen3")
    assert hard.evidence == "bank match 0.97 to img_0042 (label gen3)"
    assert hard.extra["match_id"] == "img_0042" and hard.extra["match_label"] == "gen3"
    assert hard.extra["similarity"] == pytest.approx(0.97, abs=1e-5)
    assert (unlabelled.decision, unlabelled.tool, unlabelled.evidence) == (
        SYNTHETIC,
        "bank",
        "bank match 0.97 to img_0007",
    )
    assert (weak.decision, weak.evidence) == (NO_EVIDENCE, "weak bank match 0.90 to img_0042 (label gen3)")
    assert weak.score == pytest.approx(0.90, abs=1e-5)
    assert (none.decision, none.score, none.evidence) == (NO_EVIDENCE, None, "no bank match (best 0.41)")
    assert none.extra["match_id"] == "img_0100"
    assert (by_phash.decision, by_phash.score, by_phash.evidence) == (SYNTHETIC, 1.0, "phash match d=3 to img_0007")
    assert by_phash.extra["phash_distance"] == 3 and by_phash.extra["match_id"] == "img_0007"
    assert (phash_too_far.decision, phash_too_far.evidence) == (NO_EVIDENCE, "no bank match (best 0.30)")
    assert (no_embedding.decision, no_embedding.score) == (NOT_APPLICABLE, None)


def test_embedding_match_takes_precedence_over_a_phash_match(bank_dir):
    [signal] = NearDupDetector(bank_dir).detect([EmbeddedItem("a", toward(2, 0.99), phash=P0)])
    assert (
        signal.evidence == "bank match 0.99 to img_0100 (label sdxl)"
        and signal.tool == "bank:sdxl"
        and signal.generator == "SDXL"
    )


def test_thresholds_are_configurable(bank_dir):
    detector = NearDupDetector(bank_dir, hard_threshold=0.99, soft_threshold=0.95, phash_distance=0)
    strict, weak = detector.detect(
        [EmbeddedItem("a", toward(0, 0.97)), EmbeddedItem("b", toward(1, 0.5), phash=flip(P1, 1))]
    )
    assert strict.decision == NO_EVIDENCE and weak.decision == NO_EVIDENCE
    exact, at_soft = NearDupDetector(bank_dir, hard_threshold=1.0, soft_threshold=0.5).detect(
        [EmbeddedItem("a", basis(0)), EmbeddedItem("b", toward(1, 0.5))]
    )
    assert exact.decision == SYNTHETIC and at_soft.decision == NO_EVIDENCE  # both bounds are inclusive
    [at_phash_bound] = NearDupDetector(bank_dir, phash_distance=3).detect(
        [EmbeddedItem("c", basis(3), phash=flip(P1, 3))]
    )
    assert at_phash_bound.decision == SYNTHETIC
    with pytest.raises(ValueError, match="must not exceed hard_threshold"):
        NearDupDetector(bank_dir, hard_threshold=0.8, soft_threshold=0.9)


def test_one_bank_search_per_batch(bank_dir, monkeypatch):
    detector = NearDupDetector(bank_dir)
    calls = []
    search = detector.bank.search
    monkeypatch.setattr(detector.bank, "search", lambda x, k=1: calls.append(len(x)) or search(x, k))
    detector.detect([EmbeddedItem(str(i), toward(i % 3, 0.5)) for i in range(10)] + [EmbeddedItem("x", None)])
    assert calls == [10]


def test_empty_bank_and_embedder_spec(tmp_path):
    Bank.create(tmp_path, DIM, SPEC)
    detector = NearDupDetector(tmp_path)
    assert detector.embedder_spec == SPEC and detector.name == "neardup" and detector.hard_evidence
    [signal] = detector.detect([EmbeddedItem("a", basis(0), phash=P0)])
    assert (signal.decision, signal.evidence) == (NO_EVIDENCE, "no bank match (bank is empty)")


def test_wrong_embedding_size_and_missing_bank_are_clear_errors(bank_dir, tmp_path):
    with pytest.raises(BankError, match=r"must be n x 8 \(the bank's dim\)"):
        NearDupDetector(bank_dir).detect([EmbeddedItem("a", basis(0, dim=16))])
    with pytest.raises(BankError, match="no bank at"):
        NearDupDetector(tmp_path / "absent")


# --- clusters within a scanned set -----------------------------------------------------------------


def unit_rows(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def nudged(v: np.ndarray, seed: int) -> np.ndarray:
    """A copy of unit vector v at cosine ~0.99."""
    y = v + 0.1 * unit_rows(1, len(v), seed)[0]
    return y / np.linalg.norm(y)


def constructed_set():
    base = unit_rows(6)
    vectors = [base[0], nudged(base[0], 1), base[1], base[2], nudged(base[0], 2), base[3], nudged(base[1], 3), base[4]]
    ids = ["a2", "a0", "b1", "single1", "a1", "single2", "b0", "single3"]
    return np.stack(vectors), ids


def test_clusters_of_constructed_near_duplicates():
    vectors, ids = constructed_set()
    assert near_duplicate_clusters(vectors, ids) == [["a0", "a1", "a2"], ["b0", "b1"]]
    assert near_duplicate_clusters(vectors, ids, threshold=0.999) == []
    identical = np.stack([basis(0), basis(1), basis(0)])
    assert near_duplicate_clusters(identical, ["u", "v", "w"], threshold=1.0) == [["u", "w"]]  # inclusive


def test_clusters_do_not_depend_on_query_chunking(monkeypatch):
    vectors, ids = constructed_set()
    monkeypatch.setattr(clusters, "BLOCK", 3)
    assert near_duplicate_clusters(vectors, ids) == [["a0", "a1", "a2"], ["b0", "b1"]]


def test_links_are_transitive():
    step = np.arccos(0.96)
    chain = np.stack([np.cos(k * step) * basis(0) + np.sin(k * step) * basis(1) for k in range(3)])
    assert float(chain[0] @ chain[2]) < 0.95
    assert near_duplicate_clusters(chain, ["x", "y", "z"]) == [["x", "y", "z"]]


def test_phash_links_merge_clusters():
    vectors = np.stack([basis(i) for i in range(4)])
    ids = ["p", "q", "r", "s"]
    phashes = [P0, flip(P0, 3), P1, None]
    assert near_duplicate_clusters(vectors, ids) == []
    assert near_duplicate_clusters(vectors, ids, phashes=phashes) == [["p", "q"]]
    assert near_duplicate_clusters(vectors, ids, phashes=phashes, phash_distance=3) == [["p", "q"]]
    assert near_duplicate_clusters(vectors, ids, phashes=phashes, phash_distance=2) == []


def test_zero_or_one_vector_and_mismatched_lengths():
    assert near_duplicate_clusters(np.empty((0, 8), dtype=np.float32), []) == []
    assert near_duplicate_clusters([], []) == []
    assert near_duplicate_clusters(basis(0)[None, :], ["only"], phashes=[P0]) == []
    with pytest.raises(ValueError, match="2 vectors, 3 ids: lengths differ"):
        near_duplicate_clusters(np.stack([basis(0), basis(1)]), ["a", "b", "c"])


def all_pairs_clusters(vectors: np.ndarray, ids: list[str], threshold: float) -> list[list[str]]:
    """The reference: every pair above the threshold, then connected components (quadratic)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    first, second = np.nonzero(np.triu(vectors @ vectors.T >= np.float32(threshold), 1))
    _, component = connected_components(coo_matrix((np.ones(len(first)), (first, second)), shape=(len(ids),) * 2))
    groups: dict[int, list[str]] = {}
    for i, c in enumerate(component):
        groups.setdefault(int(c), []).append(ids[i])
    found = [sorted(g) for g in groups.values() if len(g) >= 2]
    return sorted(found, key=lambda members: (-len(members), members[0]))


@pytest.mark.parametrize("seed", range(4))
def test_knn_clusters_equal_all_pairs_clusters(seed):
    rng = np.random.default_rng(seed)
    n = 400
    centres = unit_rows(80, dim=16, seed=seed)
    x = centres[rng.integers(0, len(centres), n)] + rng.uniform(0.02, 0.12, (n, 1)) * rng.standard_normal((n, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"i{j:03d}" for j in rng.permutation(n)]
    for threshold in (0.9, 0.97):
        expected = all_pairs_clusters(x, ids, threshold)
        assert expected and near_duplicate_clusters(x, ids, threshold=threshold) == expected
    assert near_duplicate_clusters(x, ids, threshold=0.9, k=2) == all_pairs_clusters(x, ids, 0.9)  # small k, same here


def peak_traced_bytes(function):
    import tracemalloc

    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_clusters_of_20k_identical_images_stay_in_bounded_memory():
    n = 20_000
    ids = [f"img{i:05d}" for i in range(n)]
    vectors = np.tile(basis(0), (n, 1))
    found, peak = peak_traced_bytes(lambda: near_duplicate_clusters(vectors, ids))
    assert found == [ids]
    assert peak < 40 * 2**20  # every pair would be 2 x 10^8 of them: gigabytes
    found, peak = peak_traced_bytes(lambda: near_duplicate_clusters(None, ids[:5000], phashes=[P0] * 5000))
    assert found == [ids[:5000]] and peak < 20 * 2**20
