"""Gaussian-mixture backend: scikit-learn's GaussianMixture (K full-covariance components).

scikit-learn's estimator takes no sample weights, so `_WeightedGaussianMixture` scales the
responsibilities by the weights in its initial and every M-step, which makes EM maximise the
weighted likelihood (zero-weight items are left out before fitting). Sampling is done here from
the fitted parameters with the run's own generator; bias lambda scales every component's covariance.
Fitting runs single-threaded: on these small matrices BLAS and OpenMP thread pools only contend.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from loops.models.base import fit_weights


class _WeightedGaussianMixture(GaussianMixture):
    def fit_weighted(self, x: np.ndarray, weights: np.ndarray) -> _WeightedGaussianMixture:
        self._scale = weights * (len(weights) / weights.sum())  # mean 1 keeps mixture weights normalised
        try:
            return self.fit(x)
        finally:
            del self._scale

    def _initialize(self, X, resp, *args, **kwargs):
        return super()._initialize(X, resp * self._scale[:, None], *args, **kwargs)

    def _m_step(self, X, log_resp, *args, **kwargs):
        return super()._m_step(X, log_resp + np.log(self._scale)[:, None], *args, **kwargs)


class GMMModel:
    name = "gmm"

    def __init__(self, rngs: list[np.random.Generator], components: int = 25, max_iter: int = 200):
        self.rngs, self.components, self.max_iter = rngs, components, max_iter
        self.min_items = components
        self.weights: np.ndarray | None = None  # (R, K)
        self.means: np.ndarray | None = None  # (R, K, d)
        self.covs: np.ndarray | None = None  # (R, K, d, d)

    def fit(self, x, y=None, weights=None) -> None:
        w, ok = fit_weights(self, x, y, weights, fitted=self.weights is not None)
        with threadpool_limits(1):  # tiny matrices: BLAS/OpenMP threads only contend (80x slower on 2 cores)
            fitted = [
                self._fit_one(rng, x[r][w[r] > 0], w[r][w[r] > 0]) if ok[r] else None for r, rng in enumerate(self.rngs)
            ]
        if self.weights is None:
            self.weights, self.means, self.covs = (np.stack(p) for p in zip(*fitted))
            return
        for r, params in enumerate(fitted):
            if params is not None:
                self.weights[r], self.means[r], self.covs[r] = params

    def _fit_one(self, rng, x, w):
        mixture = _WeightedGaussianMixture(
            n_components=self.components,
            covariance_type="full",
            max_iter=self.max_iter,
            random_state=int(rng.integers(2**31)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit_weighted(x, w)
        return mixture.weights_, mixture.means_, mixture.covariances_

    def sample(self, n: int, y=None, bias: float = 1.0) -> np.ndarray:
        if y is not None:
            raise ValueError("the gmm backend is unconditional; it takes no class labels")
        roots = np.linalg.cholesky(bias * self.covs)
        out = []
        for r, rng in enumerate(self.rngs):
            component = rng.choice(self.components, size=n, p=self.weights[r] / self.weights[r].sum())
            z = rng.standard_normal((n, self.means.shape[2]))
            out.append(self.means[r, component] + np.einsum("nij,nj->ni", roots[r, component], z))
        return np.stack(out)

    def moments(self, bias: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        mean = np.einsum("rk,rkd->rd", self.weights, self.means)
        second = np.einsum(
            "rk,rkij->rij", self.weights, bias * self.covs + self.means[..., :, None] * self.means[..., None, :]
        )
        return mean, second - mean[:, :, None] * mean[:, None, :]

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "means": self.means, "covs": self.covs}

    def load_state(self, state) -> None:
        self.weights, self.means, self.covs = (np.array(state[k]) for k in ("weights", "means", "covs"))
