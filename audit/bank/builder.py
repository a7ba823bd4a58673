"""`audit bank add`: embed a source's images and add them to a near-duplicate bank.

The source is scanned with embeddings on (cached under the bank's `embeddings/` folder) and
no detectors; images that fail to decode, or are already in the bank, are skipped.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from audit.bank.index import Bank
from audit.embedding.embedder import DEFAULT_SPEC, normalise
from audit.engine.config import ScanConfig
from audit.engine.local import scan


def add_to_bank(source: str, bank_dir: str | Path, *, label: str | None = None, embedder: str | None = None,
                preprocess: str | None = None, factory: str = "Flat", workers: int | None = None,
                batch_size: int = 16, progress=None) -> dict:
    bank_dir = Path(bank_dir)
    existing = Bank.open(bank_dir) if (bank_dir / "bank.json").exists() else None
    embedder = embedder or (existing.embedder_spec if existing else DEFAULT_SPEC)
    config = ScanConfig(detectors=(), embedder=embedder, preprocess=preprocess, embed=True)
    result = scan(source, config=config, workers=workers, batch_size=batch_size, progress=progress,
                  embedding_cache=bank_dir / "embeddings")
    if not result.stage.active:
        raise ValueError(result.summary["skipped_detectors"]["embeddings"])
    known = existing.sha256s() if existing else set()
    rows = [r for r in result.rows if r["status"] == "ok" and r["sha256"] not in known]
    rows = list({r["sha256"]: r for r in rows}.values())  # one entry per distinct image
    if rows:
        vectors, _ = normalise(np.stack([result.stage.vector(r["sha256"]) for r in rows]))
        bank = existing or Bank.create(bank_dir, vectors.shape[1], embedder, factory=factory)
        label = label or os.path.basename(os.path.normpath(source))
        bank.add(vectors, [{"id": r["id"], "uri": r["uri"], "label": label, "sha256": r["sha256"],
                            "phash": r["phash"]} for r in rows], embedder_spec=embedder)
        bank.save()
        size = bank.info()["size"]
    else:
        size = existing.info()["size"] if existing else 0
    return {"added": len(rows), "skipped": len(result.rows) - len(rows), "size": size}
