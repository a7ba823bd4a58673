"""Banks of known synthetic images and near-duplicate search: the persisted FAISS bank (index.py),
perceptual hashes (phash.py) and clusters within one scan (clusters.py). `audit bank add`, which runs
a scan, lives above the engine in audit/bank_add.py. `Bank` and `BankError` load faiss and pyarrow on first use, not on import."""

from __future__ import annotations

__all__ = ["Bank", "BankError"]


def __getattr__(name: str):
    if name in __all__:
        from audit.bank import index

        return getattr(index, name)
    raise AttributeError(f"module 'audit.bank' has no attribute {name!r}")
