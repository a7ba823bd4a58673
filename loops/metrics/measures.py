"""Quality and diversity metrics of generated samples against a real test set.

- FID: the Fréchet distance between Gaussians fitted to two feature sets (float64, scipy's sqrtm
  with the usual guard against a spurious imaginary part).
- precision, recall, density, coverage (Naeem et al. 2020) with k nearest neighbours, computed
  from blocked float64 distances so 10^4 x 10^4 needs only a block of rows in memory at a time.
- toy backends: mean shift |m - m*|, variance ratio tr C / tr C*, and the closed-form W2 to the
  true Gaussian, from the model's output moments (no sampling noise).
"""

from __future__ import annotations

import warnings

import numpy as np

from loops.metrics.linalg import psd_sqrt

DISTANCE_BLOCK_ENTRIES = 8_000_000  # distances held at once (64 MB of float64)


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features a (N, D) and b (M, D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return frechet_distance(
        a.mean(0), np.atleast_2d(np.cov(a, rowvar=False)), b.mean(0), np.atleast_2d(np.cov(b, rowvar=False))
    )


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    import scipy.linalg  # here, so `import loops` stays light

    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        try:
            covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        except scipy.linalg.LinAlgWarning:  # singular (e.g. fewer items than feature dimensions)
            covmean = np.full_like(sigma1, np.nan)
    if not np.isfinite(covmean).all():  # singular product: offset the diagonals (as pytorch-fid does)
        offset = eps * np.eye(len(sigma1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.abs(covmean.imag).max():.3g} in sqrtm")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` (Naeem et al. 2020)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    real_radii, fake_radii = _kth_neighbour_distances(real, k), _kth_neighbour_distances(fake, k)
    in_real_balls = np.zeros(len(fake), dtype=np.int64)
    recalled = np.zeros(len(real), dtype=bool)
    nearest_fake = np.full(len(real), np.inf)
    for start, d in _distance_blocks(fake, real):  # d: (fake block, all real)
        in_real_balls[start : start + len(d)] = (d < real_radii[None, :]).sum(axis=1)
        recalled |= (d < fake_radii[start : start + len(d), None]).any(axis=0)
        np.minimum(nearest_fake, d.min(axis=0), out=nearest_fake)
    return {
        "precision": float((in_real_balls > 0).mean()),
        "recall": float(recalled.mean()),
        "density": float(in_real_balls.mean() / k),
        "coverage": float((nearest_fake < real_radii).mean()),
    }


def _kth_neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its k-th nearest other row (the row itself is the 0th)."""
    if len(x) <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} items, got {len(x)}")
    radii = np.empty(len(x))
    for start, d in _distance_blocks(x, x):
        radii[start : start + len(d)] = np.partition(d, k, axis=1)[:, k]
    return radii


def _distance_blocks(rows: np.ndarray, columns: np.ndarray):
    """(start, euclidean distances of rows[start:start+b] to all columns), block by block."""
    column_norms = np.einsum("ij,ij->i", columns, columns)
    block = max(1, DISTANCE_BLOCK_ENTRIES // max(1, len(columns)))
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        d2 = -2.0 * (part @ columns.T)
        d2 += np.einsum("ij,ij->i", part, part)[:, None]
        d2 += column_norms[None, :]
        yield start, np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)


def gaussian_w2(mean1, cov1, mean2, cov2) -> np.ndarray:
    """Closed-form 2-Wasserstein distance between Gaussians, batched over leading axes."""
    root2 = psd_sqrt(cov2)
    cross = psd_sqrt(root2 @ cov1 @ root2)
    squared = (
        np.sum((mean1 - mean2) ** 2, axis=-1)
        + np.trace(cov1, axis1=-2, axis2=-1)
        + np.trace(cov2, axis1=-2, axis2=-1)
        - 2 * np.trace(cross, axis1=-2, axis2=-1)
    )
    return np.sqrt(np.maximum(squared, 0.0))


def moment_metrics(model, bias: float, data) -> dict[str, np.ndarray]:
    """Per run: mean shift, variance ratio, and (for Gaussian data) W2 of the model's output."""
    mean, cov = model.moments(bias)
    out = {
        "mean_shift": np.linalg.norm(mean - data.mean, axis=-1),
        "var_ratio": np.trace(cov, axis1=-2, axis2=-1) / np.trace(data.cov),
    }
    if data.is_gaussian:
        out["w2"] = gaussian_w2(mean, cov, data.mean, data.cov)
    return out


def fid_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FID per run of features a (R, N, D) against b (R, M, D), all runs at once: the Fréchet
    distance is the squared W2 between the fitted Gaussians, tr sqrt(C2^1/2 C1 C2^1/2) by eigh."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return gaussian_w2(a.mean(1), _batch_cov(a), b.mean(1), _batch_cov(b)) ** 2


def _batch_cov(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(1, keepdims=True)
    return np.swapaxes(centred, 1, 2) @ centred / (x.shape[1] - 1)


def measure(model, samples: np.ndarray, test_features: list[np.ndarray], config, data, features) -> dict:
    """All metrics a configuration asks for, as {name: (R,) array}. Toy worlds (identity features)
    compute FID for all runs at once."""
    out = {}
    if "moments" in config.metrics and hasattr(model, "moments"):
        out.update(moment_metrics(model, config.bias, data))
    batched = "fid" in config.metrics and getattr(features, "name", None) == "identity"
    if batched:
        fakes = np.stack([features(images) for images in samples])
        out["fid"] = fid_batch(fakes, np.stack(test_features))
    per_run_fid = "fid" in config.metrics and not batched
    if per_run_fid or "prdc" in config.metrics:
        per_run = []
        for images, real in zip(samples, test_features):
            fake = features(images)
            row = {"fid": fid(fake, real)} if per_run_fid else {}
            if hasattr(features, "class_metrics"):
                row.update(features.class_metrics(images))
            if "prdc" in config.metrics:
                row.update(prdc(real, fake, config.k))
            per_run.append(row)
        out.update({name: np.array([row[name] for row in per_run]) for name in per_run[0]})
    return out
