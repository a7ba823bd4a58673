"""Tail reweighting: training weights proportional to (k-NN density)^-alpha in a feature space.

The k-NN density estimate at item i is k / (N V_d r_k(i)^d), with r_k(i) the distance to its
k-th nearest neighbour among the items and d the feature dimension, so the weight is
proportional to r_k(i)^(alpha d): items in sparse regions (the tails) count more. Computed in
log space relative to the median item and clipped to [1/`clip`, `clip`] times its weight, then
normalised to mean 1, so a few isolated items cannot take over the loss and none is dropped.

Choosing alpha: for a Gaussian, weighting by p^-alpha turns the fitted covariance into C/(1-alpha),
while an MLE refit on N items shrinks it by (1 - 1/N) per generation in expectation; so alpha = 1/N
(the default of `--reweight tails`) cancels the expected shrinkage, in any dimension. Larger alpha
inflates the variance generation after generation (benchmarks/reweight_gaussian.py).
"""

from __future__ import annotations

import numpy as np

import audit.threads as threads

DEFAULT_K = 5
DEFAULT_CLIP = 10.0


def tail_weights(features: np.ndarray, alpha: float, k: int = DEFAULT_K, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """(N,) weights with mean 1 for the rows of `features` (N, d)."""
    x = np.ascontiguousarray(np.asarray(features, dtype=np.float32).reshape(len(features), -1))
    n, d = x.shape
    if n <= k:
        return np.ones(n)
    radius = np.sqrt(np.maximum(_kth_squared_distance(x, k).astype(np.float64), 0.0))
    if not (radius > 0).any():
        return np.ones(n)
    log_w = alpha * d * np.log(np.maximum(radius, radius[radius > 0].min()))
    w = np.exp(np.clip(log_w - np.median(log_w), -np.log(clip), np.log(clip)))
    return w / w.mean()


def _kth_squared_distance(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row (the row itself is the 0-th):
    in numpy for small problems, where waking thread pools costs more than the search (audit.threads)."""
    n, d = x.shape
    if threads.small(n * n * d):
        gram = np.einsum("id,jd->ij", x, x, dtype=np.float64)  # einsum without BLAS: no thread pool woken
        norms = np.diag(gram)
        squared = norms[:, None] + norms[None, :] - 2.0 * gram
        return np.partition(squared, k, axis=1)[:, k]
    import faiss

    index = faiss.IndexFlatL2(d)
    index.add(x)
    with threads.limited(threads.main_share(), torch=False):
        squared, _ = index.search(x, k + 1)
    return squared[:, k]


def tail_weights_batch(
    features: np.ndarray,
    keep: np.ndarray,
    alpha: float | None,
    k: int = DEFAULT_K,
    clip: float = DEFAULT_CLIP,
    block_entries: int = 8_000_000,
) -> np.ndarray:
    """(R, N) weights: per run, `tail_weights` over its kept items (1 elsewhere), for all runs at once
    (float64 distances, runs in blocks of about `block_entries` distances); alpha None: 1/(kept items)."""
    x = np.asarray(features, dtype=np.float64).reshape(*keep.shape, -1)
    out = np.ones(keep.shape)
    block = max(1, block_entries // max(1, keep.shape[1] ** 2))
    for start in range(0, len(x), block):
        out[start : start + block] = _weights_block(
            x[start : start + block], keep[start : start + block], alpha, k, clip
        )
    return out


def _weights_block(x: np.ndarray, keep: np.ndarray, alpha: float | None, k: int, clip: float) -> np.ndarray:
    norms = np.einsum("rnd,rnd->rn", x, x)
    d2 = norms[:, :, None] + norms[:, None, :] - 2.0 * (x @ np.swapaxes(x, 1, 2))
    d2[~np.broadcast_to(keep[:, None, :], d2.shape)] = np.inf  # only kept items are neighbours
    kept = keep.sum(1)
    out = np.ones(keep.shape)
    radius = np.sqrt(np.maximum(np.partition(d2, min(k, d2.shape[2] - 1), axis=2)[..., min(k, d2.shape[2] - 1)], 0.0))
    for r in np.flatnonzero(kept > k):
        mine = radius[r, keep[r]]
        if not (mine > 0).any():
            continue
        a = alpha or 1.0 / kept[r]
        log_w = a * x.shape[2] * np.log(np.maximum(mine, mine[mine > 0].min()))
        w = np.exp(np.clip(log_w - np.median(log_w), -np.log(clip), np.log(clip)))
        out[r, keep[r]] = w / w.mean()
    return out
