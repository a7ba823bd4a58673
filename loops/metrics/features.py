"""Feature extractors for FID and PRDC, behind one interface: `extractor(x) -> (N, D) float64`.

- `IdentityFeatures`: the items themselves (toy vectors), flattened.
- `ClassifierFeatures` (loops/metrics/classifier.py): a small CNN trained on the real training split of
  MNIST-like images, as MAD and Martínez et al. use classifier features for small images.
- `ClipFeatures`: normalised CLIP image embeddings from the scan's embedding engine
  (audit/embedding/embedder.py), the same model the detectors use; missing weights raise its clear message.
- `InceptionFeatures`: torchmetrics' FID Inception-v3 (2048-d pool features), from a local
  weights file only; without it (or without torch-fidelity) one clear message says what to get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


class FeatureExtractor(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class FeatureWeightsMissing(RuntimeError):
    """A feature extractor's weights or library are not available locally."""


class IdentityFeatures:
    name = "identity"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(len(x), -1)


class ClipFeatures:
    """CLIP image embeddings (L2-normalised) for uint8 images (N, H, W) or (N, H, W, 3)."""

    name = "clip"

    def __init__(self, spec: str = "ViT-B-32/openai", batch_size: int = 64, device: str | None = None):
        from audit.embedding.backends import load_embedder
        from audit.embedding.embedder import WeightsMissing

        try:
            self.embedder = load_embedder(spec, device=device)
        except WeightsMissing as e:
            raise FeatureWeightsMissing(str(e)) from None
        self.batch_size = batch_size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from audit.embedding.embedder import normalise, prepare_pixels

        images = np.asarray(x)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"CLIP features take uint8 (N, H, W[, 3]) images, got {images.dtype} {images.shape}")
        if images.ndim == 3:
            images = np.repeat(images[..., None], 3, axis=3)
        prepared = np.stack([prepare_pixels(image) for image in images])
        parts = [
            self.embedder.embed(prepared[i : i + self.batch_size]) for i in range(0, len(prepared), self.batch_size)
        ]
        return normalise(np.concatenate(parts))[0].astype(np.float64)


class InceptionFeatures:
    """Inception-v3 pool features as torchmetrics computes them for FID.

    Images: uint8 (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 channels; grey is repeated
    to RGB and torchmetrics resizes to 299x299. `feature_extractor_weights_path`: the FID Inception
    weights file (`INCEPTION_WEIGHTS`, from `INCEPTION_URL`), read as tensors only; nothing is downloaded.
    """

    name = "inception"

    def __init__(self, feature_extractor_weights_path, batch_size: int = 64):
        path = Path(feature_extractor_weights_path) if feature_extractor_weights_path else None
        if path is None or not path.is_file():
            raise FeatureWeightsMissing(
                f"Inception features need the FID Inception weights as a local file ({INCEPTION_WEIGHTS}, "
                f"from {INCEPTION_URL}); pass its path as feature_extractor_weights_path"
                + (f" (not found: {path})" if path else "")
            )
        try:
            self.net = _load_inception(path)
        except ModuleNotFoundError as e:
            raise FeatureWeightsMissing(
                f"Inception features need torch-fidelity: pip install torch-fidelity ({e})"
            ) from None
        self.batch_size = batch_size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        images = _nchw_rgb(np.asarray(x))
        with torch.no_grad():
            parts = [
                self.net(torch.from_numpy(images[i : i + self.batch_size])).double().numpy()
                for i in range(0, len(images), self.batch_size)
            ]
        return np.concatenate(parts)


def _load_inception(path: Path):
    """torchmetrics' Inception with weights read by `torch.load(weights_only=True)` (tensors only, no
    pickled code); torch-fidelity itself would unpickle the given file, so it gets a re-saved copy."""
    import tempfile

    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3

    from audit.atomic import write_atomically

    state = torch.load(path, map_location="cpu", weights_only=True)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / INCEPTION_WEIGHTS
        write_atomically(copy, lambda p: torch.save(state, p))
        return NoTrainInceptionV3(
            name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(copy)
        )


def _nchw_rgb(images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8:
        raise ValueError(f"Inception features take uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Inception features take (N, H, W[, C]) or (N, C, H, W) images, got {images.shape}")
    return np.ascontiguousarray(np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images)
