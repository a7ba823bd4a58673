"""Embedding engine, embedding cache, probe training and format, UnivFD conversion, and the
scan's behaviour when weights are missing or meaningless."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from audit import ScanConfig, scan
from audit.cli import main
from audit.detectors.probe import LinearProbe, ProbeError, convert_univfd, train_probe
from audit.embedding.embedder import (
    CLIP_MEAN,
    CLIP_STD,
    RANDOM_NOTE,
    Embedder,
    EmbedderSpec,
    WeightsMissing,
    prepare_pixels,
    resolve_weights,
)
from tests.conftest import noise_image, shared_data


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i in range(6):
        noise_image((300 + 10 * i, 260), seed=i).save(root / f"p{i}.png")
    return root


def test_prepare_pixels_modes():
    rgb = np.zeros((300, 500, 3), np.uint8)
    assert prepare_pixels(rgb, "clip").shape == (224, 224, 3)
    small = np.full((100, 150, 3), 200, np.uint8)
    crop = prepare_pixels(small, "univfd")
    assert crop.shape == (224, 224, 3) and crop[0, 0, 0] == 0 and crop[112, 112, 0] == 200  # padded, not resized
    with pytest.raises(ValueError):
        prepare_pixels(rgb, "bogus")


def test_spec_parsing():
    assert EmbedderSpec.parse("ViT-L-14/openai") == EmbedderSpec(model="ViT-L-14", tag="openai")
    assert EmbedderSpec.parse("ViT-B-32=/w.bin").path == "/w.bin"
    assert EmbedderSpec.parse("random").random and EmbedderSpec.parse("random:ViT-B-32").model == "ViT-B-32"
    with pytest.raises(ValueError):
        EmbedderSpec.parse("ViT-B-32")


def test_missing_weights_give_one_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        path = resolve_weights(EmbedderSpec.parse("ViT-B-32/openai"))
    except WeightsMissing as e:
        message = str(e)
        assert "timm/vit_base_patch32_clip_224.openai" in message and "open_clip_pytorch_model.bin" in message
        assert "--embedder ViT-B-32=" in message
    else:
        pytest.skip(f"weights are cached on this machine ({path})")
    with pytest.raises(WeightsMissing, match="not found"):
        resolve_weights(EmbedderSpec.parse("ViT-B-32=/nonexistent/weights.bin"))


def test_real_clip_weights_embed_when_present(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        embedder = Embedder("ViT-B-32/openai", device="cpu")
    except WeightsMissing as e:
        pytest.skip(f"CLIP weights cannot be downloaded here: {e}")
    rgb = np.asarray(noise_image((256, 256)))
    vectors = embedder.embed(np.stack([prepare_pixels(rgb)] * 2))
    assert vectors.shape == (2, 512) and np.allclose(vectors[0], vectors[1], atol=1e-4)


def test_scan_goes_on_without_embedding_detectors_when_weights_are_missing(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    probe = LinearProbe(weight=np.ones(512, np.float32), bias=0.0, embedder="ViT-B-32=/nonexistent.bin")
    probe.save(tmp_path / "probe")
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(photos),
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "0",
            "--quiet",
            "--probe",
            str(tmp_path / "probe"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "weights" in summary["skipped_detectors"]["probe"] and summary["detectors"] == ["metadata", "watermark"]
    assert summary["counts"]["ok"] == 6
    assert "did not run" in (tmp_path / "o" / "report.md").read_text()


def test_random_embedder_is_labelled_meaningless_everywhere(photos, tmp_path):
    x = Embedder("random").embed(np.zeros((2, 224, 224, 3), np.uint8))
    probe = LinearProbe(weight=np.ones(x.shape[1], np.float32), bias=0.0, embedder="random")
    probe.save(tmp_path / "probe")
    result = scan(str(photos), tmp_path / "o", config=ScanConfig(probe=str(tmp_path / "probe")), workers=0)
    assert RANDOM_NOTE in result.summary["notes"]
    assert RANDOM_NOTE in (tmp_path / "o" / "report.md").read_text()
    assert all(r["probe_decision"] in ("synthetic", "no_evidence") for r in result.rows)  # never "real": meaningless
    assert result.summary["estimate"]["is_lower_bound"] is False  # the probe is a soft detector


def test_embeddings_are_computed_once_and_cached(photos, tmp_path, monkeypatch):
    calls = []
    original = Embedder.embed

    def counting(self, prepared):
        calls.append(len(prepared))
        return original(self, prepared)

    monkeypatch.setattr(Embedder, "embed", counting)
    config = ScanConfig(detectors=(), embedder="random", embed=True)
    cache = tmp_path / "cache"  # a cache kept apart from the output folder (--overwrite clears the folder's own)
    first = scan(str(photos), tmp_path / "o", config=config, workers=0, batch_size=4, embedding_cache=cache)
    assert sum(calls) == 6
    second = scan(
        str(photos), tmp_path / "o", config=config, workers=0, batch_size=4, overwrite=True, embedding_cache=cache
    )
    assert sum(calls) == 6  # all from the cache
    ids = [r["sha256"] for r in first.rows]
    assert np.array_equal(
        np.stack([first.stage.vector(i) for i in ids]), np.stack([second.stage.vector(i) for i in ids])
    )


def test_probe_trained_on_separable_features_separates_them(tmp_path):
    rng = np.random.default_rng(0)
    direction = rng.normal(size=64)
    x = rng.normal(size=(400, 64)) + np.outer(np.repeat([0, 1], 200), direction) * 0.8
    y = np.repeat([0, 1], 200)
    train = rng.permutation(400)[:300]
    test = np.setdiff1d(np.arange(400), train)
    probe = train_probe(x[train], y[train], embedder="random")
    p = probe.probabilities(x[test])
    assert ((p >= 0.5) == y[test]).mean() > 0.95
    from sklearn.metrics import log_loss

    assert abs(p.mean() - y[test].mean()) < 0.05 and log_loss(y[test], p) < 0.3  # calibrated, confident
    loaded = LinearProbe.load(probe.save(tmp_path / "probe"))
    assert np.allclose(loaded.probabilities(x[test]), p, atol=1e-6)
    shuffled = train_probe(x[train], rng.permutation(y[train]), embedder="random")  # no signal: no separation
    assert ((shuffled.probabilities(x[test]) >= 0.5) == y[test]).mean() < 0.75


def test_univfd_head_converts_safely_from_the_published_file(tmp_path):
    path = shared_data("univfd") / "fc_weights.pth"
    probe = convert_univfd(path)
    assert probe.weight.shape == (768,) and probe.embedder == "ViT-L-14/openai"
    assert probe.preprocess == "univfd" and probe.normalized_inputs is False
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    raw = np.random.default_rng(0).normal(size=(3, 768)).astype(np.float32)
    expected = torch.sigmoid(torch.from_numpy(raw) @ state["weight"].float().T + state["bias"].float()).numpy().ravel()
    assert np.allclose(probe.probabilities(raw), expected, atol=1e-5)

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(_Evil(str(tmp_path / "PWNED"))))
    with pytest.raises(ProbeError):
        convert_univfd(evil)
    assert not (tmp_path / "PWNED").exists()


def test_models_pull_from_file_installs_a_named_probe(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path))
    runner = CliRunner()
    missing = runner.invoke(main, ["scan", str(tmp_path), "--probe", "univfd", "--quiet"])
    assert missing.exit_code == 2 and "audit models pull univfd" in missing.output
    path = shared_data("univfd") / "fc_weights.pth"
    result = runner.invoke(main, ["models", "pull", "univfd", "--from", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "probes" / "univfd" / "probe.json").read_text())["embedder"] == "ViT-L-14/openai"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_model_input_is_clip_normalisation_of_the_stacked_batch():
    """`to_input` stacks the workers' images once, into a buffer reused from batch to batch: the input
    (and so the embedding) is bit-identical to CLIP's normalisation of the stacked batch, from a list
    or an array, and an earlier batch's input survives a later, larger batch."""
    import torch

    embedder = Embedder("random")
    images = [np.random.default_rng(i).integers(0, 256, (224, 224, 3), dtype=np.uint8) for i in range(3)]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (CLIP_MEAN, CLIP_STD))
    expected = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255.0) - mean) / std
    first = embedder.to_input(images[:1])
    for given in (images, np.stack(images)):
        assert torch.equal(embedder.to_input(given), expected)
    assert torch.equal(first, expected[:1])
    assert np.array_equal(embedder.embed(images), embedder.embed(np.stack(images)))


def test_small_images_are_embedded_too(tmp_path):
    Image.new("RGB", (40, 30), "red").save(tmp_path / "tiny.png")
    result = scan(str(tmp_path), config=ScanConfig(detectors=(), embedder="random", embed=True), workers=0)
    assert result.stage.vector(result.rows[0]["sha256"]).shape == (64,)


def test_calibrate_with_univfd_reports_missing_vit_l14_weights(photos, tmp_path, monkeypatch):
    """`calibrate --probe univfd` runs the real path; without ViT-L/14 weights it says so and still
    measures the detectors that need no embeddings (with the weights present it measures the head)."""
    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runner = CliRunner()
    assert (
        runner.invoke(
            main, ["models", "pull", "univfd", "--from", str(shared_data("univfd") / "fc_weights.pth")]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        main,
        [
            "calibrate",
            "--real",
            str(photos),
            "--synthetic",
            str(photos),
            "--probe",
            "univfd",
            "--out",
            str(tmp_path / "calib"),
            "--workers",
            "0",
            "--quiet",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    calibration = json.loads(result.stdout)
    assert calibration["embedder"] == "ViT-L-14/openai" and calibration["preprocess"] == "univfd"
    if "skipped" in calibration["probe"]:
        assert "ViT-L-14" in calibration["probe"]["skipped"] and "probe" not in calibration["detectors"]
    else:
        assert calibration["probe"]["source"].startswith("UnivFD")
    assert set(calibration["detectors"]) >= {"metadata", "watermark"}
