"""The Detector protocol and the Signal every detector returns (see DESIGN.md)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

SYNTHETIC = "synthetic"
REAL = "real"
UNKNOWN = "unknown"

# What a detector needs; the pipeline computes each thing once per image.
NEEDS_BYTES = "bytes"
NEEDS_PIXELS = "pixels"
NEEDS_EMBEDDINGS = "embeddings"


@dataclass
class Signal:
    """One detector's verdict on one image.

    score: probability that the image is synthetic, or None when not applicable.
    decision: SYNTHETIC, REAL (no evidence found) or UNKNOWN (not applicable / failed).
    evidence: short human-readable reason.
    generator: the generator named by hard evidence, when there is one.
    """

    score: float | None
    decision: str
    evidence: str = ""
    generator: str | None = None
    extra: dict = field(default_factory=dict)


def not_applicable(reason: str) -> Signal:
    return Signal(score=None, decision=UNKNOWN, evidence=reason)


class Detector(Protocol):
    name: str
    needs: frozenset[str]
    hard_evidence: bool

    def detect(self, batch: Sequence["ImageRecord"]) -> list[Signal]:  # noqa: F821
        ...


@dataclass
class EmbeddedItem:
    """What a detector that needs embeddings sees for one image (built in the main process).

    embedding: L2-normalised float32 vector from the embedding engine, or None when the image
    could not be embedded (decode error). phash: 64-bit perceptual hash as 16 hex digits, or None.
    norm: the raw embedding's L2 norm (raw = embedding * norm), for heads trained on raw features.
    """

    id: str
    embedding: "np.ndarray | None"  # noqa: F821
    phash: str | None = None
    norm: float | None = None
