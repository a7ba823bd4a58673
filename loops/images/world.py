"""The parts of an image world (the diffusion backend): dataset, internet with curators, the
classifier feature space for the metrics, and the filter over the curators' flags.

Datasets and classifiers are cached per process, so configurations of one study share them
(both are deterministic functions of their settings).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from loops.config import IMAGE_FILTERS, SimConfig
from loops.images.publish import PublishSettings
from loops.mitigate.filters import FlagFilter

CLASSIFIER_EPOCHS = 3


def image_parts(cfg: SimConfig, streams, curator_dir: Path):
    """(data, internet, features, filter) of a resolved diffusion configuration."""
    from loops.images.internet import Internet
    from loops.models.diffusion import PRESETS

    data = load_dataset(cfg.dataset, PRESETS[cfg.diffusion_preset].resolution, cfg.test_size)
    settings = PublishSettings(
        watermark_rate=cfg.watermark_rate,
        jpeg_quality=cfg.jpeg_quality,
        resize=cfg.resize,
        transform_rate=cfg.transform_rate,
    )
    internet = Internet(
        settings,
        detectors_of(cfg.filter),
        curator_dir,
        cfg.probe_embedder,
        cfg.bank_rate,
        streams.filter,
        data.resolution,
        probe=cfg.probe,
    )
    return data, internet, classifier(cfg.dataset, data.resolution, cfg.test_size), FlagFilter(cfg.filter)


def detectors_of(filter_name: str) -> tuple[str, ...]:
    if filter_name == "all":
        return IMAGE_FILTERS
    return (filter_name,) if filter_name in IMAGE_FILTERS else ()


@lru_cache(maxsize=4)
def load_dataset(spec: str, resolution: int, test_size: int):
    from loops.images.datasets import load_image_data

    return load_image_data(spec, resolution, test_size)


@lru_cache(maxsize=4)
def classifier(spec: str, resolution: int, test_size: int):
    """The small CNN trained on the real training split: features for FID/PRDC (its pooled conv
    block, the layer where every metric passes loops/metrics/validate.py) and class metrics."""
    from loops.metrics.classifier import ClassifierFeatures

    data = load_dataset(spec, resolution, test_size)
    return ClassifierFeatures.train(data.train_images, data.train_labels, epochs=CLASSIFIER_EPOCHS, layer="conv")
