"""A persisted bank of known synthetic images: a faiss index of their embeddings plus metadata.

A bank is a folder of three files:

- `index.faiss`: the faiss index; cosine similarity = inner product on L2-normalised vectors;
- `meta.parquet`: one row per vector: `bank_id` (its position in the index), `id` (the image's id
  in its source), `uri`, `label`, `sha256`, `phash` (16 hex digits);
- `bank.json`: embedder spec, `encoder_id` (an ONNX encoder's file sha256, else the spec), kind, dim, faiss factory string, metric, count, training, times, version.

Embeddings of different models are incomparable, so a bank records the embedder spec of its
vectors and refuses others. A pHash bank (`Bank.create_phash`, embedder `none`, kind `phash`:
see kinds.py) holds no vectors: its `index.faiss` is a faiss binary index of the pHashes, and
it is searched with `phash_search` alone. Changes stay in memory until `save()`, which replaces each file
atomically (temporary file, then os.replace) and writes bank.json last; `open` checks that the
three files agree. Lossy codes distort similarities, and the detector's thresholds assume exact
ones: SQ8 stays within ~0.001 of the exact cosine, PQ32 at d=512 is off by ~0.44 on random vectors
(less on real embeddings, never ~0): see benchmarks/bank_search.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import audit.threads as threads
from audit.atomic import write_atomically
from audit.bank.kinds import EMBEDDING, NO_EMBEDDER, PHASH, kind_of, mixing_error
from audit.bank.phash import HASH_BITS, to_bytes
from audit.embedding.backends import encoder_id, same_encoder
from audit.side_files import SideFileError, read_json

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
META_FILE = "meta.parquet"
INFO_FILE = "bank.json"
META_SCHEMA = pa.schema(
    [
        ("bank_id", pa.int64()),
        ("id", pa.string()),
        ("uri", pa.string()),
        ("label", pa.string()),
        ("sha256", pa.string()),
        ("phash", pa.string()),
    ]
)
ROW_FIELDS = ("id", "uri", "label", "sha256", "phash")
INFO_TYPES = {"embedder": str, "dim": int, "factory": str, "metric": str, "count": int}  # checked when read
INFO_KEYS = ("version", "embedder", "dim", "factory", "metric", "count", "trained", "created", "updated")
DEFAULT_EF_SEARCH = 64
DEFAULT_NPROBE = 16
NORM_TOLERANCE = 1e-3
TRAIN_PER_LIST = 39  # IVF k-means sample per list: the least faiss recommends; more costs time, not recall
NO_LABEL = "(no label)"
PHASH_FACTORY = "BFlat"  # exact Hamming search (faiss IndexBinaryFlat)
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


class BankError(Exception):
    """A bank that is missing, corrupt, or used with incompatible vectors; the message is one line."""


def build_index(dim: int, factory: str) -> faiss.Index:
    """An empty inner-product faiss index from a factory string ("Flat", "HNSW32", "IVF1024,PQ32", ...)."""
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise BankError(f"bad faiss factory string {factory!r}: {faiss_reason(exc)}") from None


def train_index(index: faiss.Index, x: np.ndarray) -> int:
    """Train an untrained index on `x` the way the bank does; returns how many vectors it trained on.

    IVF k-means sees a fixed-seed sample of at most TRAIN_PER_LIST vectors per list (faiss would take
    256 per list: all of a 10^6-vector first add to an IVF4096 bank, ~10 minutes of k-means on 2 cores).
    PQ codes skip the polysemous training that index_factory turns on: it costs ~100x the PQ training
    and only serves polysemous search, which the bank never uses.
    """
    ivf = faiss.try_extract_index_ivf(index)
    for part in (index, ivf):
        part = part if part is None else faiss.downcast_index(part)
        if isinstance(part, (faiss.IndexPQ, faiss.IndexIVFPQ)):
            part.do_polysemous_training = False
    if ivf is not None and len(x) > TRAIN_PER_LIST * ivf.nlist:
        x = x[np.sort(np.random.default_rng(0).choice(len(x), TRAIN_PER_LIST * ivf.nlist, replace=False))]
    index.train(x)
    return len(x)


def tune_index(index: faiss.Index, ef_search: int = DEFAULT_EF_SEARCH, nprobe: int = DEFAULT_NPROBE) -> None:
    """Set the search-time knobs the index has: HNSW efSearch (graph or IVF quantizer), IVF nprobe."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(nprobe, ivf.nlist)
    graphs = [index] + ([faiss.downcast_index(ivf.quantizer)] if ivf is not None else [])
    for part in graphs:
        if isinstance(part, faiss.IndexHNSW):
            part.hnsw.efSearch = ef_search


def faiss_reason(exc: Exception) -> str:
    """The useful last part of a faiss error, on one line (faiss prefixes the C++ function and file)."""
    message = " ".join(str(exc).split())
    return re.sub(r"^Error in .*? at \S+:\d+: (Error: )?", "", message)


class Bank:
    """An open bank; build one with `Bank.create` or `Bank.open`, never directly."""

    def __init__(self, path: Path, index: faiss.Index, meta: pa.Table, info: dict, ef_search: int, nprobe: int):
        self.path = path
        self._index = index
        self._meta = meta
        self._info = info
        self._phashes = index if self.kind == PHASH else _phash_index(meta)
        self.ef_search = ef_search
        self.nprobe = nprobe
        if self.kind == EMBEDDING:
            tune_index(index, ef_search, nprobe)

    @classmethod
    def create(
        cls,
        path,
        dim: int,
        embedder_spec: str,
        factory: str = "Flat",
        *,
        ef_search: int = DEFAULT_EF_SEARCH,
        nprobe: int = DEFAULT_NPROBE,
    ) -> Bank:
        """A new empty bank of embeddings saved in `path` (created if needed); refuses to overwrite a bank."""
        if dim < 1 or not embedder_spec or kind_of(embedder_spec) == PHASH:
            raise BankError(
                f"a bank of embeddings needs a positive dim and a model's embedder spec, got dim={dim} "
                f"spec={embedder_spec!r} (a bank of hashes only is made with Bank.create_phash)"
            )
        index = build_index(dim, factory)
        return cls._new(
            path, index, _new_info(embedder_spec, dim, factory, "inner_product", index.is_trained), ef_search, nprobe
        )

    @classmethod
    def create_phash(cls, path) -> Bank:
        """A new empty bank of perceptual hashes only (no model, kind `phash`) saved in `path`."""
        index = faiss.IndexBinaryFlat(HASH_BITS)
        return cls._new(
            path,
            index,
            _new_info(NO_EMBEDDER, HASH_BITS, PHASH_FACTORY, "hamming", True),
            DEFAULT_EF_SEARCH,
            DEFAULT_NPROBE,
        )

    @classmethod
    def _new(cls, path, index, info: dict, ef_search: int, nprobe: int) -> Bank:
        path = Path(path)
        existing = [name for name in (INFO_FILE, INDEX_FILE, META_FILE) if (path / name).exists()]
        if existing:
            raise BankError(f"refusing to overwrite the bank at {path} ({', '.join(existing)} exist)")
        path.mkdir(parents=True, exist_ok=True)
        bank = cls(path, index, META_SCHEMA.empty_table(), info, ef_search, nprobe)
        bank.save()
        return bank

    @classmethod
    def open(cls, path, *, ef_search: int = DEFAULT_EF_SEARCH, nprobe: int = DEFAULT_NPROBE) -> Bank:
        """The bank saved in `path`; BankError when it is missing or its files are unreadable or disagree."""
        path = Path(path)
        if not path.is_dir():
            raise BankError(f"no bank at {path}: the folder does not exist")
        info = _read_info(path)
        index = _read_index(path, kind_of(info["embedder"]))
        meta = _read_meta(path)
        _check_consistent(path, info, index, meta)
        return cls(path, index, meta, info, ef_search, nprobe)

    @property
    def dim(self) -> int:
        return self._info["dim"]

    @property
    def embedder_spec(self) -> str:
        return self._info["embedder"]

    @property
    def kind(self) -> str:
        """`embedding` (vectors of a model) or `phash` (perceptual hashes only)."""
        return kind_of(self.embedder_spec)

    @property
    def factory(self) -> str:
        return self._info["factory"]

    def __len__(self) -> int:
        return self._index.ntotal

    def set_search_params(self, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Override HNSW efSearch and/or IVF nprobe (ignored by indexes without them)."""
        self.ef_search = self.ef_search if ef_search is None else ef_search
        self.nprobe = self.nprobe if nprobe is None else nprobe
        tune_index(self._index, self.ef_search, self.nprobe)

    def add(self, vectors, rows: list[dict], *, embedder_spec: str) -> np.ndarray:
        """Append L2-normalised `vectors` (n x dim) with one metadata dict per vector; returns their bank ids.

        Untrained indexes (IVF, PQ) are trained on the first add. Nothing is written until `save()`.
        """
        self.check_embedder(embedder_spec)
        if self.kind == PHASH:
            raise BankError(f"the bank at {self.path} holds perceptual hashes only: add entries with add_hashes")
        x = self._check_vectors(vectors, "vectors")
        if len(rows) != len(x):
            raise BankError(f"{len(x)} vectors but {len(rows)} metadata rows")
        ids = np.arange(len(self), len(self) + len(x), dtype=np.int64)
        table = _rows_table(rows, ids)
        if len(x) == 0:
            return ids
        if not self._index.is_trained:
            self._train(x)
        self._index.add(x)
        self._meta = pa.concat_tables([self._meta, table])
        _add_phashes(self._phashes, table)
        return ids

    def add_hashes(self, rows: list[dict]) -> np.ndarray:
        """Append entries of a pHash bank: one metadata dict per entry, each with its `phash`; returns
        their bank ids. Nothing is written until `save()`."""
        self.check_embedder(NO_EMBEDDER)
        missing = [row.get("id") for row in rows if row.get("phash") is None]
        if missing:
            raise BankError(f"every entry of a pHash bank needs a phash; {missing[0]!r} has none")
        ids = np.arange(len(self), len(self) + len(rows), dtype=np.int64)
        table = _rows_table(rows, ids)
        if rows:
            self._index.add(to_bytes(table.column("phash").to_pylist()))
            self._meta = pa.concat_tables([self._meta, table])
        return ids

    @property
    def encoder_id(self) -> str | None:
        """What identifies the bank's vectors (an ONNX encoder's file hash); None in banks of older versions."""
        return self._info.get("encoder_id")

    def check_embedder(self, embedder_spec: str) -> None:
        """BankError unless entries or queries of `embedder_spec` belong in this bank: vectors of the
        same encoder (for ONNX encoders, the same file by its sha256, whatever its path or name)."""
        if self.kind == EMBEDDING and kind_of(embedder_spec) == EMBEDDING:
            if same_encoder(self.embedder_spec, self.encoder_id, embedder_spec):
                return
            if self.encoder_id is not None and embedder_spec == self.embedder_spec:
                raise BankError(
                    f"the bank at {self.path} holds embeddings of the encoder file with {self.encoder_id}, "
                    f"and {embedder_spec!r} now names another file: embeddings of different encoder "
                    f"files are incomparable"
                )
        error = mixing_error(self.path, self.embedder_spec, embedder_spec)
        if error:
            raise BankError(error)

    def save(self) -> None:
        """Write the three files, each atomically; bank.json last."""
        self._info.update(count=len(self), updated=_now())
        write = faiss.write_index_binary if self.kind == PHASH else faiss.write_index
        write_atomically(self.path / INDEX_FILE, lambda tmp: write(self._index, str(tmp)))
        write_atomically(self.path / META_FILE, lambda tmp: pq.write_table(self._meta, tmp))
        write_atomically(self.path / INFO_FILE, lambda tmp: tmp.write_text(json.dumps(self._info, indent=2) + "\n"))

    def search(self, vectors, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, bank ids), each n x k, best first; missing neighbours are (-inf, -1)."""
        if self.kind == PHASH:
            raise BankError(f"the bank at {self.path} holds perceptual hashes only: search it with phash_search")
        x = self._check_vectors(vectors, "queries")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if len(self) == 0 or len(x) == 0:
            return np.full((len(x), k), -np.inf, dtype=np.float32), np.full((len(x), k), -1, dtype=np.int64)
        with threads.limited(threads.main_share(), torch=False):  # beside the scan's busy workers
            similarities, ids = self._index.search(x, k)
        similarities[ids < 0] = -np.inf
        return similarities, ids

    def phash_search(self, phashes: list[str | None], max_distance: int) -> list[tuple[int, int] | None]:
        """For each hex pHash, (bank id, Hamming distance) of the nearest bank hash within
        `max_distance`, else None (also for a None query)."""
        found: list[tuple[int, int] | None] = [None] * len(phashes)
        wanted = [i for i, h in enumerate(phashes) if h is not None]
        if not wanted or self._phashes.ntotal == 0:
            return found
        # one thread: waking faiss's threads costs ~20 ms a call on a busy machine, the scan itself 17 ms at 10^6 hashes
        with threads.limited(1, torch=False, blas=False):
            distances, ids = self._phashes.search(to_bytes([phashes[i] for i in wanted]), 1)
        for i, distance, bank_id in zip(wanted, distances[:, 0], ids[:, 0]):
            if bank_id >= 0 and distance <= max_distance:
                found[i] = (int(bank_id), int(distance))
        return found

    def meta(self, bank_id: int) -> dict:
        """The metadata row of one bank entry."""
        if not 0 <= bank_id < len(self):
            raise IndexError(f"no entry {bank_id} in the bank at {self.path} (it holds ids 0..{len(self) - 1})")
        return self._meta.slice(int(bank_id), 1).to_pylist()[0]

    def sha256s(self) -> set[str]:
        """The content hashes of the bank's images, to skip images it already holds."""
        return {h for h in self._meta.column("sha256").to_pylist() if h is not None}

    def info(self) -> dict:
        """Size, factory, dim, embedder, training, label counts, bytes on disk (as last saved), times."""
        labels = Counter(label or NO_LABEL for label in self._meta.column("label").to_pylist())
        files = (self.path / name for name in (INDEX_FILE, META_FILE, INFO_FILE))
        return {
            "path": str(self.path),
            "size": len(self),
            "kind": self.kind,
            "factory": self.factory,
            "dim": self.dim,
            "embedder": self.embedder_spec,
            "metric": self._info["metric"],
            "trained": bool(self._index.is_trained),
            "trained_on": self._info["trained_on"],
            "labels": dict(labels.most_common()),
            "bytes_on_disk": sum(f.stat().st_size for f in files if f.exists()),
            "ef_search": self.ef_search,
            "nprobe": self.nprobe,
            "created": self._info["created"],
            "updated": self._info["updated"],
            "version": self._info["version"],
        }

    def _check_vectors(self, vectors, what: str) -> np.ndarray:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise BankError(f"{what} must be n x {self.dim} (the bank's dim), got shape {x.shape}")
        if len(x) == 0:
            return x
        if not np.isfinite(x).all():
            raise BankError(f"{what} contain NaN or infinite values")
        norms = np.linalg.norm(x, axis=1)
        if np.abs(norms - 1).max() > NORM_TOLERANCE:
            raise BankError(f"{what} must be L2-normalised (norms range {norms.min():.4g}..{norms.max():.4g})")
        return x

    def _train(self, x: np.ndarray) -> None:
        advice = "use factory 'Flat', or add more vectors in the first add"
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None and len(x) < ivf.nlist:
            raise BankError(
                f"factory {self.factory!r} is trained on the first add, which needs at least "
                f"{ivf.nlist} vectors (ideally {39 * ivf.nlist}), got {len(x)}: {advice}"
            )
        try:
            used = train_index(self._index, x)
        except RuntimeError as exc:
            raise BankError(
                f"could not train factory {self.factory!r} on {len(x)} vectors ({faiss_reason(exc)}): {advice}"
            ) from None
        self._info.update(trained=True, trained_on=used, trained_at=_now())


def _new_info(embedder_spec: str, dim: int, factory: str, metric: str, trained: bool) -> dict:
    now = _now()
    return {
        "version": FORMAT_VERSION,
        "embedder": embedder_spec,
        "kind": kind_of(embedder_spec),
        "dim": dim,
        "encoder_id": None if kind_of(embedder_spec) == PHASH else encoder_id(embedder_spec),
        "factory": factory,
        "metric": metric,
        "count": 0,
        "trained": bool(trained),
        "trained_on": None,
        "trained_at": None,
        "created": now,
        "updated": now,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rows_table(rows: list[dict], ids: np.ndarray) -> pa.Table:
    """The metadata rows as a table with their bank ids, after checking their fields."""
    for row in rows:
        unknown = set(row) - set(ROW_FIELDS)
        if unknown:
            raise BankError(f"unknown metadata field(s) {sorted(unknown)}; allowed: {', '.join(ROW_FIELDS)}")
        if not isinstance(row.get("id"), str):
            raise BankError(f"every metadata row needs a string 'id', got {row!r}")
        if row.get("phash") is not None and not _HEX16.fullmatch(row["phash"]):
            raise BankError(f"phash of {row['id']!r} must be 16 hex digits, got {row['phash']!r}")
    return pa.Table.from_pylist([{**row, "bank_id": int(i)} for row, i in zip(rows, ids)], schema=META_SCHEMA)


def _phash_index(meta: pa.Table) -> faiss.IndexBinaryIDMap:
    """A binary index of the bank's pHashes keyed by bank id (entries without a pHash are left out)."""
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(HASH_BITS))
    _add_phashes(index, meta)
    return index


def _add_phashes(index: faiss.IndexBinaryIDMap, table: pa.Table) -> None:
    hashes = table.column("phash").to_pylist()
    ids = table.column("bank_id").to_numpy()
    present = [i for i, h in enumerate(hashes) if h is not None]
    if present:
        index.add_with_ids(to_bytes([hashes[i] for i in present]), ids[present].astype(np.int64))


def _read_info(path: Path) -> dict:
    file = path / INFO_FILE
    if not file.is_file():
        raise BankError(f"no bank at {path}: {INFO_FILE} not found")
    try:
        info = read_json(file)  # the one reader of side files: regular file, size and nesting limits
    except SideFileError as exc:
        raise BankError(f"corrupt bank at {path}: {INFO_FILE} is unreadable ({exc})") from None
    missing = [key for key in INFO_KEYS if not isinstance(info, dict) or key not in info]
    if missing:
        raise BankError(f"corrupt bank at {path}: {INFO_FILE} lacks {', '.join(missing)}")
    if info["version"] != FORMAT_VERSION:
        raise BankError(
            f"the bank at {path} has format version {info['version']}; "
            f"this autophagy-audit reads version {FORMAT_VERSION}"
        )
    for key, kind in INFO_TYPES.items():
        value = info[key]
        if (
            not isinstance(value, kind)
            or isinstance(value, bool)
            or (kind is int and value < 0)
            or (kind is str and not value)
        ):
            raise BankError(
                f"corrupt bank at {path}: {INFO_FILE} field {key!r} must be a "
                f"{'non-negative whole number' if kind is int else 'non-empty text'}, got {value!r}"
            )
    return info


def _read_index(path: Path, kind: str) -> faiss.Index | faiss.IndexBinary:
    file = path / INDEX_FILE
    if not file.is_file():
        raise BankError(f"corrupt bank at {path}: {INDEX_FILE} not found")
    try:
        return faiss.read_index_binary(str(file)) if kind == PHASH else faiss.read_index(str(file))
    except RuntimeError as exc:
        raise BankError(f"corrupt bank at {path}: {INDEX_FILE} is unreadable ({faiss_reason(exc)})") from None


def _read_meta(path: Path) -> pa.Table:
    file = path / META_FILE
    if not file.is_file():
        raise BankError(f"corrupt bank at {path}: {META_FILE} not found")
    try:
        meta = pq.read_table(file)
    except (OSError, pa.ArrowException) as exc:
        raise BankError(f"corrupt bank at {path}: {META_FILE} is unreadable ({' '.join(str(exc).split())})") from None
    if not meta.schema.equals(META_SCHEMA):
        raise BankError(
            f"corrupt bank at {path}: {META_FILE} has columns {meta.schema.names}, expected {META_SCHEMA.names}"
        )
    return meta


def _check_consistent(path: Path, info: dict, index: faiss.Index, meta: pa.Table) -> None:
    """The three files describe the same vectors: same count, dim and metric, bank ids 0..n-1 in order."""
    if not index.ntotal == meta.num_rows == info["count"]:
        raise BankError(
            f"corrupt bank at {path}: {INDEX_FILE} holds {index.ntotal} vectors, {META_FILE} "
            f"{meta.num_rows} rows, {INFO_FILE} says {info['count']}"
        )
    if kind_of(info["embedder"]) == PHASH:
        _check_phash_consistent(path, index, meta)
    elif index.d != info["dim"] or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise BankError(
            f"corrupt bank at {path}: {INDEX_FILE} has dim {index.d} and metric {index.metric_type}, "
            f"{INFO_FILE} says dim {info['dim']} and inner product"
        )
    if not np.array_equal(meta.column("bank_id").to_numpy(), np.arange(meta.num_rows)):
        raise BankError(f"corrupt bank at {path}: bank_id in {META_FILE} is not 0..{meta.num_rows - 1} in order")


def _check_phash_consistent(path: Path, index: faiss.IndexBinary, meta: pa.Table) -> None:
    """A pHash bank's binary index holds 64-bit codes, one per metadata row, and every row has its pHash."""
    if index.d != HASH_BITS:
        raise BankError(f"corrupt bank at {path}: {INDEX_FILE} holds {index.d}-bit codes, not {HASH_BITS}-bit pHashes")
    if meta.column("phash").null_count:
        raise BankError(f"corrupt bank at {path}: {META_FILE} has entries without a phash in a pHash bank")
