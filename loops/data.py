"""Real data for the toy backends: a standard Gaussian, MAD's 25-mode grid, or a feature matrix.

Every source draws training items with a run's generator, gives a held-out test set for the
metrics, and knows the true mean and covariance (for the mean shift, variance ratio and W2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loops.errors import ConfigError

GRID_SPACING = 2.0
GRID_STD = 0.1


class GaussianData:
    """N(0, I) in `dim` dimensions."""

    is_gaussian = True

    def __init__(self, dim: int):
        self.dim = dim
        self.mean, self.cov = np.zeros(dim), np.eye(dim)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_normal((n, self.dim))

    def test_set(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(rng, n)


class GridData:
    """MAD's 2-D mixture: 25 equally likely modes on a 5x5 grid (spacing 2), each N(centre, 0.1^2 I)."""

    is_gaussian = False
    dim = 2

    def __init__(self):
        ticks = GRID_SPACING * np.arange(-2, 3)
        self.centres = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)
        self.mean = np.zeros(2)
        self.cov = (np.mean(ticks**2) + GRID_STD**2) * np.eye(2)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        modes = rng.integers(len(self.centres), size=n)
        return self.centres[modes] + GRID_STD * rng.standard_normal((n, 2))

    def test_set(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.draw(rng, n)


class MatrixData:
    """A finite feature matrix: a fixed held-out test split; training draws are without
    replacement within a draw and independent across draws. Truth = the training rows' moments."""

    is_gaussian = False

    def __init__(self, matrix: np.ndarray, test_size: int, name: str):
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or not np.isfinite(matrix).all():
            raise ConfigError(f"--data {name}: expected a finite 2-D matrix, got shape {matrix.shape}")
        if test_size >= len(matrix):
            raise ConfigError(
                f"--data {name}: {len(matrix)} rows leave none for training after a test split of {test_size}"
            )
        order = np.random.default_rng(0).permutation(len(matrix))
        self.test, self.train = matrix[order[:test_size]], matrix[order[test_size:]]
        self.dim = matrix.shape[1]
        self.mean, self.cov = self.train.mean(0), np.cov(self.train, rowvar=False).reshape(self.dim, self.dim)
        self.name = name

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if n > len(self.train):
            raise ConfigError(f"--data {self.name}: cannot draw {n} items from {len(self.train)} training rows")
        return self.train[rng.choice(len(self.train), size=n, replace=False)]

    def test_set(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.test[:n]


def load_data(spec: str, dim: int | None, test_size: int):
    """The source named by --data: gaussian, grid25, mnist:DIR (PCA to `dim`), or a .npy/.csv matrix."""
    if spec == "gaussian":
        return GaussianData(dim)
    if spec == "grid25":
        return GridData()
    if spec.startswith("mnist:"):
        return MatrixData(_mnist_pca(spec[len("mnist:") :], dim), test_size, spec)
    matrix = _read_matrix(Path(spec))
    if dim is not None and dim != matrix.shape[1]:
        raise ConfigError(f"--data {spec} has {matrix.shape[1]} columns; --dim {dim} does not match")
    return MatrixData(matrix, test_size, spec)


def _read_matrix(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ConfigError(f"--data {path}: not gaussian, grid25, mnist:DIR or an existing .npy/.csv file")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".csv":
            return np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--data {path}: cannot read ({e})") from None
    raise ConfigError(f"--data {path}: expected a .npy or .csv feature matrix")


def _mnist_pca(folder: str, dim: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    from loops.images.mnist import load_mnist_images

    try:
        images = load_mnist_images(folder)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--data mnist:{folder}: {e}") from None
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return PCA(n_components=dim, svd_solver="full").fit_transform(flat)
