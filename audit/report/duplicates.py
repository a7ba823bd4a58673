"""Near-duplicate clusters within a scan (embedding similarity >= threshold, or pHash distance <=
phash_distance; pHash alone when the scan loads no model or a random-initialised one, whose
similarities are noise), found window by window as rows stream
by: each window of WINDOW consecutive readable images is clustered on its own, so memory is bounded
by one window (its ids, hashes and vectors: about 2 KB per image with 512-d embeddings, 200 MB a
window), not by the scan. Copies further apart than a window are not linked here; the bank search
still finds copies of known synthetic images anywhere. Unflagged members of a cluster holding a
flagged image count as flagged copies."""
from __future__ import annotations

MAX_LISTED_CLUSTERS = 20
MAX_LISTED_MEMBERS = 20  # ids listed per cluster (its size is given in full)
WINDOW = 100_000  # readable images clustered together


class DuplicateTally:
    """Feed it ok rows with `add`; `summary()` gives summary.json's `duplicates`."""

    def __init__(self, stage, threshold: float, phash_distance: int, window: int = WINDOW):
        self.stage, self.threshold, self.phash_distance, self.window = stage, threshold, phash_distance, window
        self.by_hash_only = stage.hash_only or stage.embedder.is_random
        self.pending: list[tuple[str, bool, str | None, object]] = []  # (id, flagged, phash, vector)
        self.windows = self.clusters = self.in_clusters = self.copies = 0
        self.copy_ids: list[str] = []
        self.largest: list[tuple[int, list[str]]] = []  # (size, first members), largest first

    def add(self, row: dict) -> None:
        if self.by_hash_only:
            if row["phash"]:
                self.pending.append((row["id"], bool(row["flagged"]), row["phash"], None))
        else:
            vector = self.stage.vector(row["sha256"])
            if vector is not None:
                self.pending.append((row["id"], bool(row["flagged"]), row["phash"], vector))
        if len(self.pending) >= self.window:
            self._cluster_window()

    def summary(self) -> dict:
        self._cluster_window()
        return {
            "threshold": self.threshold,
            "phash_distance": self.phash_distance,
            "window": self.window,
            "windows": self.windows,
            "clusters": self.clusters,
            "images_in_clusters": self.in_clusters,
            "flagged_copies": self.copies,
            "flagged_copy_ids": self.copy_ids,
            "largest": [members for _, members in self.largest],
            "largest_sizes": [size for size, _ in self.largest],
        }

    def _cluster_window(self) -> None:
        if not self.pending:
            return
        from audit.bank.clusters import near_duplicate_clusters

        pending, self.pending = self.pending, []
        self.windows += 1
        flagged = {rid: f for rid, f, _, _ in pending}
        vectors = None if self.by_hash_only else _normalised([v for _, _, _, v in pending])
        found = near_duplicate_clusters(vectors, [rid for rid, _, _, _ in pending], threshold=self.threshold,
                                        phashes=[p for _, _, p, _ in pending], phash_distance=self.phash_distance)
        for cluster in found:
            copies = [i for i in cluster if not flagged[i]] if any(flagged[i] for i in cluster) else []
            self.copies += len(copies)
            self.copy_ids += copies[:MAX_LISTED_CLUSTERS - len(self.copy_ids)]
        self.clusters += len(found)
        self.in_clusters += sum(len(c) for c in found)
        self.largest = sorted(self.largest + [(len(c), c[:MAX_LISTED_MEMBERS]) for c in found[:MAX_LISTED_CLUSTERS]],
                              key=lambda entry: -entry[0])[:MAX_LISTED_CLUSTERS]


def _normalised(vectors: list):
    import numpy as np

    from audit.embedding.embedder import normalise

    return normalise(np.stack(vectors))[0]
