"""Batched square roots of symmetric positive semi-definite matrices (via eigh, so never complex)."""

from __future__ import annotations

import numpy as np


def psd_sqrt(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of each (..., d, d) PSD matrix; tiny negative eigenvalues clip to 0."""
    values, vectors = np.linalg.eigh(a)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]) @ np.swapaxes(vectors, -1, -2)
