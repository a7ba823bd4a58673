"""Multivariate Gaussian backend (MAD section 3.1), vectorised over runs.

Refit by maximum likelihood (covariance / sum of weights) or, with `unbiased`, the unbiased
covariance (reliability weights: / (W - sum w^2 / W), i.e. n - 1 for equal weights). Sampling
bias lambda draws from N(mean, lambda * covariance).
"""

from __future__ import annotations

import numpy as np

from loops.metrics.linalg import psd_sqrt
from loops.models.base import fit_weights


class GaussianModel:
    name = "gaussian"
    min_items = 2

    def __init__(self, rngs: list[np.random.Generator], unbiased: bool = False):
        self.rngs, self.unbiased = rngs, unbiased
        self.mean: np.ndarray | None = None
        self.cov: np.ndarray | None = None

    def fit(self, x, y=None, weights=None) -> None:
        w, ok = fit_weights(self, x, y, weights, fitted=self.mean is not None)
        total = np.where(ok, w.sum(axis=1), 1.0)
        mean = np.einsum("rn,rnd->rd", w, x) / total[:, None]
        centred = x - mean[:, None, :]
        scatter = np.swapaxes(centred * w[..., None], 1, 2) @ centred
        denominator = total - (w**2).sum(axis=1) / total if self.unbiased else total
        cov = scatter / np.where(ok, denominator, 1.0)[:, None, None]
        if self.mean is None:
            self.mean, self.cov = mean, cov
        else:
            self.mean = np.where(ok[:, None], mean, self.mean)
            self.cov = np.where(ok[:, None, None], cov, self.cov)

    def sample(self, n: int, y=None, bias: float = 1.0) -> np.ndarray:
        if y is not None:
            raise ValueError("the gaussian backend is unconditional; it takes no class labels")
        z = np.stack([rng.standard_normal((n, self.mean.shape[1])) for rng in self.rngs])
        return self.mean[:, None, :] + z @ psd_sqrt(bias * self.cov)

    def moments(self, bias: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        return self.mean, bias * self.cov

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "cov": self.cov}

    def load_state(self, state) -> None:
        self.mean, self.cov = np.asarray(state["mean"]), np.asarray(state["cov"])
