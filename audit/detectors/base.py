"""The Detector protocol and the Signal every detector returns (see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Decisions. Only a detector that measures realness (a calibrated probe) may say REAL; a detector
# that found nothing says NO_EVIDENCE, which is not a statement that the image is real.
SYNTHETIC = "synthetic"
NO_EVIDENCE = "no_evidence"
NOT_APPLICABLE = "not_applicable"  # the detector cannot judge this image (too small, no bank entry, ...)
ERROR = "error"  # the image could not be read or the detector failed on it
REAL = "real"
DECISIONS = (SYNTHETIC, NO_EVIDENCE, NOT_APPLICABLE, ERROR, REAL)

# What a detector needs; the pipeline computes each thing once per image.
NEEDS_BYTES = "bytes"
NEEDS_PIXELS = "pixels"
NEEDS_EMBEDDINGS = "embeddings"


@dataclass
class Signal:
    """One detector's verdict on one image.

    score: probability that the image is synthetic (the probe), or the strength of what was found (1.0
    for hard evidence, a bank match's similarity); None when the detector found nothing to score (no
    evidence) or could not judge the image: a detector that saw nothing has no score, not 0.
    decision: SYNTHETIC, NO_EVIDENCE, NOT_APPLICABLE or ERROR; REAL only from a calibrated probe.
    evidence: short human-readable reason.
    generator: the model family (FLUX.1, SDXL, ...; "unknown model") named by hard evidence, when
    there is any.
    tool: what wrote that evidence (ComfyUI, AUTOMATIC1111, a C2PA claim generator, ...), when known.
    """

    score: float | None
    decision: str
    evidence: str = ""
    generator: str | None = None
    extra: dict = field(default_factory=dict)
    tool: str | None = None


def overall_decision(row: dict) -> str:
    """A result row's verdict across its detectors: error, synthetic (any detector), real (only a
    calibrated probe says it, and only when no detector found synthetic evidence), else no_evidence."""
    if row["status"] != "ok":
        return ERROR
    decisions = {value for key, value in row.items() if key.endswith("_decision")}
    return SYNTHETIC if SYNTHETIC in decisions else REAL if REAL in decisions else NO_EVIDENCE


def not_applicable(reason: str) -> Signal:
    return Signal(score=None, decision=NOT_APPLICABLE, evidence=reason)


class Detector(Protocol):
    name: str
    needs: frozenset[str]
    hard_evidence: bool

    def detect(self, batch: Sequence[ImageRecord]) -> list[Signal]:  # noqa: F821
        ...


@dataclass
class EmbeddedItem:
    """What a detector that needs embeddings sees for one image (built in the main process).

    embedding: L2-normalised float32 vector from the embedding engine, or None when the image
    could not be embedded (decode error). phash: 64-bit perceptual hash as 16 hex digits, or None.
    norm: the raw embedding's L2 norm (raw = embedding * norm), for heads trained on raw features.
    """

    id: str
    embedding: np.ndarray | None  # noqa: F821
    phash: str | None = None
    norm: float | None = None
