"""Near-duplicate clusters within a scan, over the whole scan (embedding similarity >= threshold, or
pHash distance <= phash_distance; pHash alone when the scan loads no model or a random-initialised
one, whose similarities are noise). Rows stream by once; each readable image leaves its id, whether
it was flagged, its pHash (8 bytes) and, with a model, its unit embedding as float16 (1 KB at 512-d)
in compact arrays, and the clusters are found once at the end (audit.bank.clusters: exact for pHashes,
an inverted-file search for embeddings), so copies anywhere in the scan are linked. Unflagged members
of a cluster holding a flagged image count as flagged copies."""

from __future__ import annotations

import numpy as np

MAX_LISTED_CLUSTERS = 20
MAX_LISTED_MEMBERS = 20  # ids listed per cluster (its size is given in full)
CHUNK_ROWS = 4096  # rows per block of the growing arrays


class DuplicateTally:
    """Feed it ok rows with `add`; `summary()` gives summary.json's `duplicates`."""

    def __init__(self, stage, threshold: float, phash_distance: int):
        self.stage, self.threshold, self.phash_distance = stage, threshold, phash_distance
        self.by_hash_only = stage.hash_only or stage.embedder.is_random
        self.ids = Strings()
        self.flagged, self.codes, self.has_code = Growing(np.bool_), Growing(np.uint64), Growing(np.bool_)
        self.vectors: Growing | None = None

    def add(self, row: dict) -> None:
        if self.by_hash_only:
            if row["phash"]:
                self._keep(row, None)
            return
        vector = self.stage.vector(row["sha256"])
        if vector is not None:
            self._keep(row, vector)

    def summary(self) -> dict:
        found = self._clusters()
        flagged = self.flagged.array()
        copies = [[i for i in c if not flagged[i]] if any(flagged[i] for i in c) else [] for c in found]
        copy_ids = [self.ids[i] for c in copies for i in c][:MAX_LISTED_CLUSTERS]
        listed = found[:MAX_LISTED_CLUSTERS]
        return {
            "threshold": self.threshold,
            "phash_distance": self.phash_distance,
            "window": len(self.ids),  # the whole scan is clustered at once (kept for older readers)
            "windows": int(len(self.ids) > 0),
            "clusters": len(found),
            "images_in_clusters": sum(len(c) for c in found),
            "flagged_copies": sum(len(c) for c in copies),
            "flagged_copy_ids": copy_ids,
            "largest": [[self.ids[i] for i in c[:MAX_LISTED_MEMBERS]] for c in listed],
            "largest_sizes": [len(c) for c in listed],
        }

    def _keep(self, row: dict, vector) -> None:
        self.ids.append(row["id"])
        self.flagged.append(bool(row["flagged"]))
        self.has_code.append(bool(row["phash"]))
        self.codes.append(int(row["phash"], 16) if row["phash"] else 0)
        if vector is not None:
            if self.vectors is None:
                self.vectors = Growing(np.float16, len(vector))
            norm = float(np.linalg.norm(vector))
            self.vectors.append(np.asarray(vector, dtype=np.float32) / max(norm, 1e-12))

    def _clusters(self) -> list[list[int]]:
        """Clusters as lists of row positions, largest first, members in id order."""
        from audit.bank.clusters import near_duplicate_groups

        codes = np.ma.masked_array(self.codes.array(), mask=~self.has_code.array())
        vectors = None if self.vectors is None else self.vectors.array()
        found = near_duplicate_groups(
            vectors, len(self.ids), threshold=self.threshold, phashes=codes, phash_distance=self.phash_distance
        )
        clusters = [sorted(group.tolist(), key=self.ids.__getitem__) for group in found]
        return sorted(clusters, key=lambda c: (-len(c), self.ids[c[0]]))


class Growing:
    """A numpy array (1-d, or rows of `width`) grown by `append`, CHUNK_ROWS rows at a time."""

    def __init__(self, dtype, width: int | None = None):
        self.dtype, self.width = dtype, width
        self._full: list[np.ndarray] = []
        self._block = self._new_block()
        self._used = 0

    def _new_block(self) -> np.ndarray:
        shape = (CHUNK_ROWS,) if self.width is None else (CHUNK_ROWS, self.width)
        return np.empty(shape, dtype=self.dtype)

    def append(self, value) -> None:
        if self._used == CHUNK_ROWS:
            self._full.append(self._block)
            self._block, self._used = self._new_block(), 0
        self._block[self._used] = value
        self._used += 1

    def __len__(self) -> int:
        return len(self._full) * CHUNK_ROWS + self._used

    def array(self) -> np.ndarray:
        return np.concatenate(self._full + [self._block[: self._used]])


class Strings:
    """Strings packed as UTF-8 in one growing buffer: about their length plus 8 bytes each."""

    def __init__(self):
        self._data = bytearray()
        self._ends = Growing(np.int64)
        self._cache: np.ndarray | None = None

    def append(self, text: str) -> None:
        self._data += text.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._data))
        self._cache = None

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        if self._cache is None:
            self._cache = self._ends.array()
        start = int(self._cache[i - 1]) if i else 0
        return self._data[start : int(self._cache[i])].decode("utf-8", "surrogatepass")
