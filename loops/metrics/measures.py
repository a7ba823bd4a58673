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
RUN_CHUNK_ENTRIES = 262_144  # batched PRDC: runs taken together up to this many distances (2 MB, cache-sized)


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


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, real_radii=None) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` (Naeem et al. 2020).
    real_radii: the real items' k-th neighbour distances, when the caller keeps them."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real_radii is None:
        real_radii = _kth_neighbour_distances(real, k)
    fake_radii = _kth_neighbour_distances(fake, k)
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


def gaussian_w2(mean1, cov1, mean2, cov2, root2=None) -> np.ndarray:
    """Closed-form 2-Wasserstein distance between Gaussians, batched over leading axes (root2: the
    square root of cov2, when the caller has it already)."""
    root2 = psd_sqrt(cov2) if root2 is None else root2
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


def fid_batch(a: np.ndarray, b: np.ndarray | None = None, reference=None) -> np.ndarray:
    """FID per run of features a (R, N, D) against b (R, M, D), all runs at once: the Fréchet
    distance is the squared W2 between the fitted Gaussians, tr sqrt(C2^1/2 C1 C2^1/2) by eigh.
    reference: `reference_moments(b)` instead of b (a fixed test set is fitted once, not per call)."""
    mean_b, cov_b, root_b = reference_moments(b) if reference is None else reference
    mean_a, cov_a = _batch_moments(np.asarray(a, np.float64))
    return gaussian_w2(mean_a, cov_a, mean_b, cov_b, root_b) ** 2


def reference_moments(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, covariance, its square root) per run of features b (R, M, D)."""
    mean, cov = _batch_moments(np.asarray(b, np.float64))
    return mean, cov, psd_sqrt(cov)


def _batch_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance per run of x (R, N, D). The sums go through einsum and matmul:
    numpy's mean over the middle axis of a thin (R, N, 2) array is several times slower."""
    mean = np.einsum("rnd->rd", x) / x.shape[1]
    centred = x - mean[:, None, :]
    return mean, np.swapaxes(centred, 1, 2) @ centred / (x.shape[1] - 1)


def prdc_batch(real: np.ndarray, fake: np.ndarray, k: int = 5, real_radii2=None) -> dict[str, np.ndarray]:
    """`prdc` of each run at once: real (R, M, D) against fake (R, N, D), as {name: (R,) array}. The
    runs go in chunks that hold at most DISTANCE_BLOCK_ENTRIES distances (one run at a time,
    row-blocked, when a single run's distances exceed that). Distances are compared squared (the
    same comparisons: the square root is monotone). real_radii2: (R, M) squared k-th neighbour
    distances of the real items, when the caller keeps them (a fixed test set)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(real.shape[1], fake.shape[1]) <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} items, got {min(real.shape[1], fake.shape[1])}")
    largest = max(real.shape[1], fake.shape[1]) ** 2
    if largest > DISTANCE_BLOCK_ENTRIES:
        per_run = [
            prdc(r, f, k, None if real_radii2 is None else np.sqrt(real_radii2[i]))
            for i, (r, f) in enumerate(zip(real, fake))
        ]
        return {name: np.array([row[name] for row in per_run]) for name in per_run[0]}
    if real_radii2 is None:
        real_radii2 = kth_squared_distances_batch(real, k)
    chunk = max(1, RUN_CHUNK_ENTRIES // largest)  # a few runs at a time: the arrays stay in cache
    parts = [
        _prdc_chunk(real[s : s + chunk], fake[s : s + chunk], real_radii2[s : s + chunk], k)
        for s in range(0, len(real), chunk)
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def kth_squared_distances_batch(x: np.ndarray, k: int) -> np.ndarray:
    """(R, N): per run, each row's squared distance to its k-th nearest other row (runs in chunks)."""
    x = np.asarray(x, np.float64)
    if x.shape[1] <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} items, got {x.shape[1]}")
    if x.shape[1] ** 2 > DISTANCE_BLOCK_ENTRIES:
        return np.stack([_kth_neighbour_distances(run, k) ** 2 for run in x])
    chunk = max(1, RUN_CHUNK_ENTRIES // x.shape[1] ** 2)
    return np.concatenate(
        [_kth_smallest(_run_squared_distances(x[s : s + chunk], x[s : s + chunk]), k) for s in range(0, len(x), chunk)]
    )


def _kth_smallest(d2: np.ndarray, k: int) -> np.ndarray:
    """Per run and row, the k-th smallest entry (d2 is partitioned in place)."""
    d2.partition(k, axis=2)
    return d2[:, :, k].copy()


def _prdc_chunk(real: np.ndarray, fake: np.ndarray, real_radii2: np.ndarray, k: int) -> dict[str, np.ndarray]:
    fake_radii2 = _kth_smallest(_run_squared_distances(fake, fake), k)
    d2 = _run_squared_distances(fake, real)  # (runs, fake, real)
    in_real_balls = (d2 < real_radii2[:, None, :]).sum(axis=2)
    recalled = (d2 < fake_radii2[:, :, None]).any(axis=1)
    nearest_fake = d2.min(axis=1)
    return {
        "precision": (in_real_balls > 0).mean(axis=1),
        "recall": recalled.mean(axis=1),
        "density": in_real_balls.mean(axis=1) / k,
        "coverage": (nearest_fake < real_radii2).mean(axis=1),
    }


def _run_squared_distances(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(R, A, B) squared euclidean distances of rows (R, A, D) to columns (R, B, D), per run, as one
    matmul: [x, |x|^2, 1] . [-2y, 1, |y|^2] = |x - y|^2 (clipped at 0 against rounding)."""
    rows_sq = np.einsum("rad,rad->ra", rows, rows)[..., None]
    columns_sq = np.einsum("rbd,rbd->rb", columns, columns)[..., None]
    left = np.concatenate([rows, rows_sq, np.ones_like(rows_sq)], axis=2)
    right = np.concatenate([-2.0 * columns, np.ones_like(columns_sq), columns_sq], axis=2)
    d2 = left @ np.swapaxes(right, 1, 2)
    return np.maximum(d2, 0.0, out=d2)


def measure(
    model, samples: np.ndarray, test_features: list[np.ndarray], config, data, features, cache: dict | None = None
) -> dict:
    """All metrics a configuration asks for, as {name: (R,) array}. Toy worlds (identity features)
    compute FID and PRDC for all runs at once. cache: a dict kept over the generations of one
    simulation, for what depends only on its fixed test set (the fitted Gaussians, the real items'
    neighbour radii), computed at the first generation."""
    cache = {} if cache is None else cache
    out = {}
    if "moments" in config.metrics and hasattr(model, "moments"):
        out.update(moment_metrics(model, config.bias, data))
    identity = getattr(features, "name", None) == "identity" and not hasattr(features, "class_metrics")
    wanted = [m for m in ("fid", "prdc") if m in config.metrics]
    if identity and wanted:
        fakes = np.stack([features(images) for images in samples])
        if "test" not in cache:
            cache["test"] = np.stack(test_features).astype(np.float64, copy=False)
        if "fid" in wanted:
            if "fid_reference" not in cache:
                cache["fid_reference"] = reference_moments(cache["test"])
            out["fid"] = fid_batch(fakes, reference=cache["fid_reference"])
        if "prdc" in wanted:
            key = ("real_radii2", config.k)
            if key not in cache:
                cache[key] = kth_squared_distances_batch(cache["test"], config.k)
            out.update(prdc_batch(cache["test"], fakes, config.k, cache[key]))
        return out
    if wanted:
        key = ("real_radii_per_run", config.k)
        if "prdc" in wanted and key not in cache:
            cache[key] = [_kth_neighbour_distances(np.asarray(real, np.float64), config.k) for real in test_features]
        per_run = []
        for r, (images, real) in enumerate(zip(samples, test_features)):
            fake = features(images)
            row = {"fid": fid(fake, real)} if "fid" in wanted else {}
            if hasattr(features, "class_metrics"):
                row.update(features.class_metrics(images))
            if "prdc" in wanted:
                row.update(prdc(real, fake, config.k, cache[key][r]))
            per_run.append(row)
        out.update({name: np.array([row[name] for row in per_run]) for name in per_run[0]})
    return out
