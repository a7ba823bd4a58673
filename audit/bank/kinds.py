"""What a bank holds: embeddings of one model (kind `embedding`), or perceptual hashes only (kind
`phash`, made with `--embedder none`: no model is loaded and copies are found by pHash distance alone).

The two kinds never mix: a pHash bank has no vectors to compare a model's embeddings with, and an
embedding bank's entries all need vectors.
"""

from __future__ import annotations

NO_EMBEDDER = "none"  # the embedder spec of a pHash-only bank and of a scan that loads no model
EMBEDDING = "embedding"
PHASH = "phash"


def kind_of(embedder_spec: str) -> str:
    """The kind of bank that an embedder spec makes."""
    return PHASH if embedder_spec == NO_EMBEDDER else EMBEDDING


def mixing_error(bank_path, bank_spec: str, given_spec: str) -> str | None:
    """Why entries of `given_spec` cannot go into (or be searched in) a bank of `bank_spec`; None when they can."""
    if bank_spec == given_spec:
        return None
    if kind_of(bank_spec) == PHASH:
        return (
            f"the bank at {bank_path} holds perceptual hashes only (embedder {NO_EMBEDDER}), not embeddings "
            f"of {given_spec!r}: use --embedder {NO_EMBEDDER} with it, or another bank for that model"
        )
    if kind_of(given_spec) == PHASH:
        return (
            f"the bank at {bank_path} holds embeddings of {bank_spec!r}; hashes alone (--embedder "
            f"{NO_EMBEDDER}) cannot go into it: use --embedder {bank_spec}, or a new bank for hashes only"
        )
    return (
        f"the bank at {bank_path} holds embeddings of {bank_spec!r}, not {given_spec!r}: "
        f"embeddings of different models are incomparable"
    )
