"""Feature extractors: identity, the small MNIST CNN classifier (trained on real MNIST here), the idx
reader, and Inception's message when its weights are absent."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from loops.images.mnist import load_mnist, read_idx
from loops.metrics.features import ClipFeatures, FeatureWeightsMissing, IdentityFeatures, InceptionFeatures
from tests.conftest import shared_data


def test_identity_features_flatten_to_float64():
    features = IdentityFeatures()(np.arange(12, dtype=np.int32).reshape(3, 2, 2))
    assert features.shape == (3, 4) and features.dtype == np.float64


def test_idx_reader_round_trip_and_bad_files(tmp_path):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + data.tobytes())
    assert np.array_equal(read_idx(path), data)
    wide = tmp_path / "wide-idx1"
    wide.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", -5, 70000))
    assert read_idx(wide).tolist() == [-5, 70000]
    (tmp_path / "bad").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(ValueError, match="does not match"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_small_cnn_on_real_mnist():
    from loops.metrics.classifier import FEATURE_DIM, ClassifierFeatures

    images, labels = load_mnist(shared_data("mnist"), "t10k")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8 and set(labels) == set(range(10))
    train, test = slice(0, 2000), slice(3000, 4000)
    classifier = ClassifierFeatures.train(images[train], labels[train], epochs=2, batch_size=32, seed=0)
    accuracy = classifier.accuracy(images[test], labels[test])
    print(f"small CNN test accuracy on 1000 held-out MNIST digits: {accuracy:.3f}")
    assert accuracy > 0.93

    features = classifier(images[test])
    assert features.shape == (1000, FEATURE_DIM) and features.dtype == np.float64
    assert np.allclose(classifier(images[test].astype(np.float32) / 255.0), features, atol=1e-5)

    real = classifier.class_metrics(images[test])
    assert real["class_entropy"] > 0.95 * np.log(10) and real["class_kl"] < 0.05
    assert real["mean_confidence"] > 0.85
    ones = images[test][labels[test] == 1]
    collapsed = classifier.class_metrics(ones)  # a generator that only makes ones
    assert collapsed["class_entropy"] < 0.5 and collapsed["class_kl"] > 1.5
    noise = np.random.default_rng(0).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    assert classifier.class_metrics(noise)["mean_confidence"] < real["mean_confidence"]


def test_classifier_rejects_colour_images():
    from loops.metrics.classifier import ClassifierFeatures, SmallCNN

    classifier = ClassifierFeatures(SmallCNN(10), np.full(10, 0.1))
    with pytest.raises(ValueError, match="grey images"):
        classifier(np.zeros((2, 3, 28, 28), dtype=np.uint8))


def test_inception_without_weights_says_what_to_get(tmp_path):
    with pytest.raises(FeatureWeightsMissing, match="pt_inception-2015-12-05"):
        InceptionFeatures(None)
    with pytest.raises(FeatureWeightsMissing, match="not found"):
        InceptionFeatures(tmp_path / "missing.pth")


def test_inception_features_from_a_local_weights_file(tmp_path, monkeypatch):
    """With torch-fidelity installed: random weights in the real architecture give 2048-d features."""
    pytest.importorskip("torch_fidelity")
    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3

    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: {})
    monkeypatch.setattr(torch.nn.Module, "load_state_dict", lambda self, state, strict=True: None)
    weights = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path="unused"
    ).state_dict()
    monkeypatch.undo()
    torch.save(weights, tmp_path / "inception.pth")
    features = InceptionFeatures(tmp_path / "inception.pth")
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = features(images)
    assert out.shape == (3, 2048) and out.dtype == np.float64 and np.isfinite(out).all()
    with pytest.raises(ValueError, match="uint8"):
        features(images.astype(np.float32))


def test_clip_features_use_the_embedding_engine():
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    features = ClipFeatures("random")(images)
    assert features.shape == (5, 64) and features.dtype == np.float64
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0)
    assert np.allclose(ClipFeatures("random")(images), features)  # deterministic


def test_clip_features_without_weights_say_what_to_get(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FeatureWeightsMissing, match="weights file not found"):
        ClipFeatures("ViT-B-32=/nonexistent/weights.bin")
