"""`audit bank add`: embed a source's images and add them to a near-duplicate bank. A use case like
`audit calibrate`: it runs a scan, so it lives above the engine, beside calibrate.py.

The source is scanned with embeddings on (cached under the bank's `embeddings/` folder) and
no detectors; images that fail to decode, or are already in the bank, are skipped. With the
embedder `none` the bank holds perceptual hashes only: no model is loaded, nothing is cached.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from audit.bank.index import Bank
from audit.bank.kinds import NO_EMBEDDER
from audit.embedding.backends import DEFAULT_SPEC
from audit.embedding.embedder import normalise
from audit.engine.config import ScanConfig
from audit.engine.local import scan


def add_to_bank(
    source: str,
    bank_dir: str | Path,
    *,
    label: str | None = None,
    embedder: str | None = None,
    preprocess: str | None = None,
    factory: str = "Flat",
    workers: int | None = None,
    batch_size: int = 16,
    progress=None,
) -> dict:
    bank_dir = Path(bank_dir)
    existing = Bank.open(bank_dir) if (bank_dir / "bank.json").exists() else None
    embedder = embedder or (existing.embedder_spec if existing is not None else DEFAULT_SPEC)
    if existing is not None:  # (an empty bank is falsy: it has a length)
        existing.check_embedder(embedder)  # before the scan: another model, or hashes vs embeddings
    hash_only = embedder == NO_EMBEDDER
    config = ScanConfig(detectors=(), embedder=embedder, preprocess=preprocess, embed=True)
    result = scan(
        source,
        config=config,
        workers=workers,
        batch_size=batch_size,
        progress=progress,
        embedding_cache=None if hash_only else bank_dir / "embeddings",
    )
    if not result.stage.active:
        raise ValueError(result.summary["skipped_detectors"]["embeddings"])
    known = existing.sha256s() if existing is not None else set()
    rows = [r for r in result.rows if r["status"] == "ok" and r["sha256"] not in known]
    rows = list({r["sha256"]: r for r in rows}.values())  # one entry per distinct image
    if rows:
        label = label or os.path.basename(os.path.normpath(source))
        entries = [
            {"id": r["id"], "uri": r["uri"], "label": label, "sha256": r["sha256"], "phash": r["phash"]} for r in rows
        ]
        bank = (
            _add_hashes(existing, bank_dir, entries)
            if hash_only
            else _add_embeddings(existing, bank_dir, entries, result.stage, embedder, factory)
        )
        bank.save()
        size = len(bank)
    else:
        size = len(existing) if existing is not None else 0
    return {"added": len(rows), "skipped": len(result.rows) - len(rows), "size": size}


def _add_hashes(existing: Bank | None, bank_dir: Path, entries: list[dict]) -> Bank:
    bank = Bank.create_phash(bank_dir) if existing is None else existing
    bank.add_hashes(entries)
    return bank


def _add_embeddings(
    existing: Bank | None, bank_dir: Path, entries: list[dict], stage, embedder: str, factory: str
) -> Bank:
    vectors, _ = normalise(np.stack([stage.vector(e["sha256"]) for e in entries]))
    bank = Bank.create(bank_dir, vectors.shape[1], embedder, factory=factory) if existing is None else existing
    bank.add(vectors, entries, embedder_spec=embedder)
    return bank
