"""Banks of known synthetic images and near-duplicate search: the persisted FAISS bank (index.py),
`audit bank add` (builder.py), perceptual hashes (phash.py) and clusters within one scan
(clusters.py)."""
from audit.bank.index import Bank, BankError

__all__ = ["Bank", "BankError"]
