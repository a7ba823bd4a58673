"""The `GenerativeModel` protocol every backend implements (the toys here, diffusion next).

Arrays carry a leading runs axis R: the runs are independent repeats (seeds) of one
configuration, so a backend may vectorise over them (gaussian) or loop (gmm, diffusion).
A backend is built with one `numpy.random.Generator` per run and draws only from those.

- `fit(x, y=None, weights=None)`: x (R, N, *item_shape); y (R, N) class labels for conditional
  backends; weights (R, N) non-negative, 0 = removed by a filter, None = all ones. A run whose
  pool holds fewer than `min_items` items of positive weight keeps its previous fit (the first
  fit must succeed).
- `sample(n, y=None, bias=1.0)`: (R, n, *item_shape); `bias` is the sampling bias lambda.
- `state()` / `load_state()`: the fitted parameters as plain arrays, for checkpoints.
- Toy backends also give `moments(bias)`: the mean (R, d) and covariance (R, d, d) of what
  `sample` draws, in closed form.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class NotEnoughData(ValueError):
    """The first fit found fewer items than the backend needs (e.g. a filter removed them)."""


class GenerativeModel(Protocol):
    name: str
    min_items: int

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, weights: np.ndarray | None = None) -> None: ...

    def sample(self, n: int, y: np.ndarray | None = None, bias: float = 1.0) -> np.ndarray: ...

    def state(self) -> dict[str, np.ndarray]: ...

    def load_state(self, state: dict[str, np.ndarray]) -> None: ...


def fit_weights(model, x: np.ndarray, y, weights, fitted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Checked weights (R, N) and which runs have enough items to refit; rejects labels for
    unconditional backends and a first fit without enough items."""
    if y is not None:
        raise ValueError(f"the {model.name} backend is unconditional; it takes no class labels")
    w = np.ones(x.shape[:2]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape[:2] or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"weights must be finite, non-negative and of shape {x.shape[:2]}, got {w.shape}")
    ok = (w > 0).sum(axis=1) >= model.min_items
    if not fitted and not ok.all():
        raise NotEnoughData(
            f"the {model.name} backend needs at least {model.min_items} items to fit; "
            f"the filter left fewer in {int((~ok).sum())} run(s) at generation 0 "
            "(lower the filter's FPR or raise --samples-per-gen)"
        )
    return w, ok
