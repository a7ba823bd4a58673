"""The scan's embedding stage, in the main process: embeds each finished batch once (cache
first), then runs the detectors that need embeddings (probe, near-duplicate bank) on it.

Workers hand over model-ready pixels (`prepare_pixels`) so decoding overlaps inference.
When the embedder's weights are missing, the stage disables itself with one clear reason and
the scan goes on without these detectors; the summary says so. With the embedder `none`
(`hash_only`) no model is loaded and nothing is embedded or cached: the detectors see each
image's perceptual hash alone (a pHash bank's near-duplicate search).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from audit.bank.kinds import NO_EMBEDDER
from audit.detectors.base import ERROR, SYNTHETIC, EmbeddedItem, overall_decision
from audit.detectors.model_families import attribute
from audit.embedding.backends import load_embedder
from audit.embedding.cache import EmbeddingCache
from audit.embedding.embedder import RANDOM_NOTE, WeightsMissing, normalise


class EmbeddingStage:
    def __init__(
        self, detectors: list, embedder_spec: str, preprocess: str, cache_dir: Path | None, device: str | None = None
    ):
        self.detectors = detectors
        self.embedder_spec = embedder_spec
        self.preprocess = preprocess
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        self.hash_only = embedder_spec == NO_EMBEDDER
        self.cache = None
        self._memory: dict[str, np.ndarray] = {}
        self.load_seconds = 0.0
        if self.hash_only:
            self.embedder = None
            return
        start = time.perf_counter()
        try:
            self.embedder = load_embedder(embedder_spec, device=device)
        except WeightsMissing as e:
            self.embedder = None
            self.skipped = {d.name: f"embedder weights missing: {e}" for d in detectors} or {"embeddings": str(e)}
            self.detectors = []
            return
        self.load_seconds = time.perf_counter() - start
        if self.embedder.is_random:
            self.notes.append(RANDOM_NOTE)
        self.cache = (
            EmbeddingCache(cache_dir, embedder_spec, preprocess, dim=getattr(self.embedder, "dim", None))
            if cache_dir
            else None
        )
        if self.cache is not None:
            self.notes.extend(self.cache.notes)  # a damaged cache set aside

    @property
    def active(self) -> bool:
        return self.embedder is not None or self.hash_only

    def vector(self, sha256: str) -> np.ndarray | None:
        """The raw embedding of an image already seen (this scan or the cache)."""
        return self.cache.get(sha256) if self.cache is not None else self._memory.get(sha256)

    def apply(self, rows: list[dict], prepared: dict[int, np.ndarray]) -> None:
        """Embed the batch's rows (by seq) and merge the embedding detectors' columns into them."""
        if not self.active:
            return
        if not self.hash_only:
            self._embed_missing(rows, prepared)
        if not self.detectors:  # embeddings only (bank add, calibrate): nothing to merge
            return
        items = self._items(rows)
        for detector in self.detectors:
            for row, signal in zip(rows, detector.detect(items)):
                _merge(row, detector, signal)

    def close(self) -> None:
        if self.active and self.cache is not None:
            self.cache.flush()
            self.cache.notes.clear()
            self.cache.note_rejected()
            self.notes.extend(self.cache.notes)  # entries that failed their check

    def _embed_missing(self, rows: list[dict], prepared: dict[int, np.ndarray]) -> None:
        todo = [r for r in rows if r["seq"] in prepared and self.vector(r["sha256"]) is None]
        unique = list({r["sha256"]: r for r in todo}.values())
        if not unique:
            return
        vectors = self.embedder.embed([prepared[r["seq"]] for r in unique])  # stacked once, into the copy's buffer
        keys = [r["sha256"] for r in unique]
        if self.cache is not None:
            self.cache.put(keys, vectors)
        else:
            self._memory.update(zip(keys, vectors))

    def _items(self, rows: list[dict]) -> list[EmbeddedItem]:
        """The detectors' view of the rows: unit embeddings (normalised together) and perceptual hashes."""
        raws = [self.vector(row["sha256"]) if row["status"] == "ok" else None for row in rows]
        embedded = [i for i, raw in enumerate(raws) if raw is not None]
        units, norms = normalise(np.stack([raws[i] for i in embedded])) if embedded else (None, None)
        items = [EmbeddedItem(id=row["id"], embedding=None, phash=row.get("phash")) for row in rows]
        for k, i in enumerate(embedded):
            items[i] = EmbeddedItem(
                id=rows[i]["id"], embedding=units[k], phash=rows[i].get("phash"), norm=float(norms[k])
            )
        return items


def _merge(row: dict, detector, signal) -> None:
    ok = row["status"] == "ok"
    row[f"{detector.name}_score"] = signal.score if ok else None
    row[f"{detector.name}_decision"] = signal.decision if ok else ERROR
    row[f"{detector.name}_evidence"] = signal.evidence if ok else None
    if ok and signal.decision == SYNTHETIC:
        row["flagged"] = True
        if detector.hard_evidence:
            row["hard_evidence"] = True
            row["generator"], row["tool"] = attribute(
                [(row["generator"], row.get("tool")), (signal.generator, signal.tool)]
            )
    row["decision"] = overall_decision(row)
