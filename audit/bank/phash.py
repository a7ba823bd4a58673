"""64-bit perceptual hashes (imagehash's DCT pHash) as 16 hex digits, and Hamming distances between them.

A hash survives re-encoding and resizing of the same picture (a few bits change) while distinct
pictures differ in about half of their 64 bits, so a small Hamming distance means "same picture".
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_BITS = 64
# Copies within this many bits count as the same picture. Measured by benchmarks/copy_hashes.py:
# JPEG q50-90 and resizing to 0.25-0.9x stay within it; it keeps 93% of 5% centred crops (4 bits:
# 50%); distinct pictures of the generated set were never closer than 14 bits, and for unrelated
# hashes the chance of <= 8 bits is 2.8e-10 per pair (10 bits: 1.0e-8), so big banks stay precise.
DEFAULT_PHASH_DISTANCE = 8


def phash_hex(rgb: np.ndarray) -> str:
    """pHash of a uint8 HxWx3 RGB array as 16 hex digits."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"phash_hex expects a uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")
    import imagehash  # imported by the processes that hash, not by every one that reads the defaults

    return str(imagehash.phash(Image.fromarray(rgb, "RGB")))


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def to_uint64(hashes: list[str]) -> np.ndarray:
    """Hex hashes as a uint64 array (one element per hash)."""
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


def to_bytes(hashes: list[str]) -> np.ndarray:
    """Hex hashes as an n x 8 uint8 array, the code layout of faiss binary indexes."""
    bad = [h for h in hashes if len(h) != HASH_BITS // 4]
    if bad:
        raise ValueError(f"pHashes must be {HASH_BITS // 4} hex digits, got {bad[0]!r}")
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint8).reshape(len(hashes), 8)


def hamming_matrix(queries: list[str], bank: np.ndarray) -> np.ndarray:
    """len(queries) x len(bank) Hamming distances (uint8) between hex `queries` and a uint64 `bank`.

    Memory is queries x bank x 8 bytes for the intermediate XOR: chunk the queries for large banks
    (or use a faiss binary index, as `audit.bank.index` does).
    """
    return np.bitwise_count(to_uint64(queries)[:, None] ^ np.asarray(bank, dtype=np.uint64)[None, :])
