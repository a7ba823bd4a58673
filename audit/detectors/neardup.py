"""Near-duplicate detector: looks up each image's embedding and pHash in a bank of known synthetic images.

The first rule that holds decides (cosine = similarity of the nearest bank embedding):

- cosine >= hard_threshold: synthetic (hard evidence), `bank match 0.97 to img_0042 (label gen3)`;
- pHash within phash_distance bits of a bank hash: synthetic (hard evidence), `phash match d=3 to ...`;
- cosine >= soft_threshold: unknown with score = cosine, `weak bank match 0.90 to ...`;
- otherwise: real with score 0, `no bank match (best 0.41)`.

A pHash bank (embedder `none`, no model) has only the second rule: a pHash within phash_distance
bits is hard evidence, anything else is real with score 0 (`no phash match within 8 bits`). So has a
bank of a random-initialised embedder: its similarities are meaningless, so they never make evidence
(nor a weak match); the pHash decides alone and the similarity is only reported.

The bank's vectors must come from the embedder that embeds the scanned images: `embedder_spec`
says which one the bank was built with, so the pipeline can refuse a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.bank.index import Bank
from audit.bank.kinds import PHASH
from audit.bank.phash import DEFAULT_PHASH_DISTANCE
from audit.detectors.base import NEEDS_EMBEDDINGS, NO_EVIDENCE, SYNTHETIC, EmbeddedItem, Signal, not_applicable
from audit.detectors.model_families import family_of
from audit.embedding.backends import is_random


class NearDupDetector:
    name = "neardup"
    needs = frozenset({NEEDS_EMBEDDINGS})
    hard_evidence = True

    def __init__(
        self,
        bank_dir,
        hard_threshold: float = 0.95,
        soft_threshold: float = 0.85,
        phash_distance: int = DEFAULT_PHASH_DISTANCE,
    ):
        if not soft_threshold <= hard_threshold:
            raise ValueError(f"soft_threshold ({soft_threshold}) must not exceed hard_threshold ({hard_threshold})")
        self.bank = Bank.open(bank_dir)
        self.hard_threshold = hard_threshold
        self.soft_threshold = soft_threshold
        self.phash_distance = phash_distance
        self.cosine_counts = not is_random(self.bank.embedder_spec)  # a random embedder's similarity is noise

    @property
    def embedder_spec(self) -> str:
        return self.bank.embedder_spec

    @property
    def encoder_id(self) -> str | None:
        return self.bank.encoder_id

    def detect(self, batch: Sequence[EmbeddedItem]) -> list[Signal]:
        """One Signal per item; one embedding search and one pHash search for the whole batch."""
        if self.bank.kind == PHASH:
            return self._detect_by_phash(batch)
        embedded = [i for i, item in enumerate(batch) if item.embedding is not None]
        similarities = np.full(len(batch), -np.inf)
        bank_ids = np.full(len(batch), -1)
        if embedded:
            found, ids = self.bank.search(np.stack([batch[i].embedding for i in embedded]), k=1)
            similarities[embedded], bank_ids[embedded] = found[:, 0], ids[:, 0]
        phash_hits = self.bank.phash_search(
            [item.phash if item.embedding is not None else None for item in batch], self.phash_distance
        )
        return [
            self._decide(item, float(s), int(b), hit)
            for item, s, b, hit in zip(batch, similarities, bank_ids, phash_hits)
        ]

    def _detect_by_phash(self, batch: Sequence[EmbeddedItem]) -> list[Signal]:
        """A pHash bank's decisions: a copy within phash_distance bits, or no match."""
        hits = self.bank.phash_search([item.phash for item in batch], self.phash_distance)
        return [self._phash_decision(item, hit) for item, hit in zip(batch, hits)]

    def _phash_decision(self, item: EmbeddedItem, hit) -> Signal:
        if item.phash is None:
            return not_applicable("no perceptual hash")
        if hit is None:
            return Signal(
                score=None,
                decision=NO_EVIDENCE,
                evidence=f"no phash match within {self.phash_distance} bits",
                extra={"similarity": None, "match_id": None, "match_label": None},
            )
        match_id, distance = hit
        signal = self._synthetic(f"phash match d={distance} to", self.bank.meta(match_id), None)
        signal.extra["phash_distance"] = distance
        return signal

    def _decide(self, item: EmbeddedItem, similarity: float, bank_id: int, phash_hit) -> Signal:
        if item.embedding is None:
            return not_applicable("no embedding")
        if bank_id < 0:
            return Signal(
                score=None,
                decision=NO_EVIDENCE,
                evidence="no bank match (bank is empty)",
                extra={"similarity": None, "match_id": None, "match_label": None},
            )
        nearest = self.bank.meta(bank_id)
        if not self.cosine_counts:
            return self._by_phash_only(item, similarity, nearest, phash_hit)
        if similarity >= self.hard_threshold:
            return self._synthetic(f"bank match {similarity:.2f} to", nearest, similarity)
        if phash_hit is not None:
            match_id, distance = phash_hit
            signal = self._synthetic(f"phash match d={distance} to", self.bank.meta(match_id), similarity)
            signal.extra["phash_distance"] = distance
            return signal
        extra = {"similarity": similarity, "match_id": nearest["id"], "match_label": nearest["label"]}
        if similarity >= self.soft_threshold:
            return Signal(
                score=similarity,
                decision=NO_EVIDENCE,
                evidence=f"weak bank match {similarity:.2f} to {_describe(nearest)}",
                extra=extra,
            )
        return Signal(score=None, decision=NO_EVIDENCE, evidence=f"no bank match (best {similarity:.2f})", extra=extra)

    def _by_phash_only(self, item: EmbeddedItem, similarity: float, nearest: dict, phash_hit) -> Signal:
        """A random embedder's bank: the pHash decides; the similarity is reported, never used."""
        signal = self._phash_decision(item, phash_hit)
        if signal.decision != SYNTHETIC:
            signal.evidence += f" (embedding similarity {similarity:.2f} ignored: random embedder)"
            signal.extra.update(similarity=similarity, match_id=nearest["id"], match_label=nearest["label"])
        else:
            signal.extra["similarity"] = similarity
        return signal

    @staticmethod
    def _synthetic(what: str, match: dict, similarity: float | None) -> Signal:
        label = match["label"]
        return Signal(
            score=1.0,
            decision=SYNTHETIC,
            evidence=f"{what} {_describe(match)}",
            generator=family_of([label] if label else []),
            tool=f"bank:{label}" if label else "bank",
            extra={"similarity": similarity, "match_id": match["id"], "match_label": label},
        )


def _describe(match: dict) -> str:
    """`img_0042 (label gen3)`, or just the id when the bank entry has no label."""
    return f"{match['id']} (label {match['label']})" if match["label"] else match["id"]
