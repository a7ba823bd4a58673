"""A reader for MNIST's idx files (images and labels, plain or gzipped)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """The array stored in one idx file (magic: two zero bytes, a dtype code, the number of dims)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) - offset != dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"{path}: data size does not match the header's shape {shape}")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(folder, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of `split` ("train" or "t10k") in `folder`."""
    folder = Path(folder)
    images = _find(folder, f"{split}-images-idx3-ubyte")
    labels = _find(folder, f"{split}-labels-idx1-ubyte")
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} {len(y)} labels")
    return x, y


def load_mnist_images(folder) -> np.ndarray:
    """All images of every split present in `folder`, train first."""
    folder = Path(folder)
    found = [_find(folder, f"{split}-images-idx3-ubyte", required=False) for split in ("train", "t10k")]
    found = [p for p in found if p is not None]
    if not found:
        raise FileNotFoundError(f"no MNIST images (train-/t10k-images-idx3-ubyte[.gz]) in {folder}")
    return np.concatenate([read_idx(p) for p in found])


def _find(folder: Path, stem: str, required: bool = True) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    if required:
        raise FileNotFoundError(f"{stem}[.gz] not found in {folder}")
    return None
