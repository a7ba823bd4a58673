"""A generated copy-detection set: originals, their copies under the transforms scraped copies go
through, and distractors; shared by benchmarks/neardup_vs_imagededup.py and benchmarks/copy_hashes.py.

    originals/   N pictures (PNG): coloured 1/f noise (the power spectrum of natural photographs)
                 with a few hard-edged shapes, 256..512 px wide, random aspect
    queries/     each original's copies under COPIES_PER_ORIGINAL transforms drawn from TRANSFORMS
                 (JPEG q50..90, resize 0.25..0.9x, small centred and off-centre crops), plus
                 distractors: pictures drawn the same way that are copies of nothing
    truth.json   {query file name: [original file name or null, transform name]}

Everything is seeded, so the same arguments give the same files.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COPIES_PER_ORIGINAL = 2
DISTRACTOR = "distractor"
PNG_LEVEL = 1  # fast zlib: the set builds in about a minute on two cores


def _jpeg(quality: int):
    def transform(image: Image.Image, rng: np.random.Generator) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()  # the encoder's bytes, written as they are

    return transform


def _resize(scale: float):
    def transform(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
        return image.resize(size, Image.BICUBIC)

    return transform


def _crop(share: float, centred: bool):
    """Cut `share` of each side's length: evenly from both ends, or at random between them."""

    def transform(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        cut_x, cut_y = round(image.width * share), round(image.height * share)
        left = cut_x // 2 if centred else int(rng.integers(0, cut_x + 1))
        top = cut_y // 2 if centred else int(rng.integers(0, cut_y + 1))
        return image.crop((left, top, left + image.width - cut_x, top + image.height - cut_y))

    return transform


TRANSFORMS = {
    "jpeg q50": _jpeg(50),
    "jpeg q75": _jpeg(75),
    "jpeg q90": _jpeg(90),
    "resize 0.25x": _resize(0.25),
    "resize 0.5x": _resize(0.5),
    "resize 0.9x": _resize(0.9),
    "crop 5% centred": _crop(0.05, True),
    "crop 5% off-centre": _crop(0.05, False),
    "crop 10% off-centre": _crop(0.10, False),
}


def picture(rng: np.random.Generator) -> Image.Image:
    """A random picture: coloured 1/f noise plus a few shapes with hard edges."""
    width = int(rng.integers(256, 513))
    height = int(width * rng.uniform(0.6, 1.4))
    fy, fx = np.meshgrid(np.fft.fftfreq(height), np.fft.rfftfreq(width), indexing="ij")
    falloff = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(width, height)) ** rng.uniform(1.4, 1.8)
    mix = rng.normal(size=(3, 3)) + np.eye(3) * 1.5  # correlated channels, as in photographs
    noise = rng.normal(size=(3, height, width // 2 + 1)) + 1j * rng.normal(size=(3, height, width // 2 + 1))
    channels = np.fft.irfft2(noise * falloff, s=(height, width))
    channels = np.tensordot(mix, channels, axes=1)
    channels = (channels - channels.mean()) / (channels.std() + 1e-9)
    rgb = np.clip(128 + 45 * channels.transpose(1, 2, 0) + rng.uniform(-40, 40, 3), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        box = (int(x0), int(y0), int(x0 + rng.integers(20, width // 2)), int(y0 + rng.integers(20, height // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def build_copy_set(root: str | Path, originals: int = 500, distractors: int = 300, seed: int = 0) -> Path:
    """Write the set under `root` (reused when truth.json says it has these sizes); returns root."""
    root = Path(root)
    truth_file = root / "truth.json"
    wanted = {"originals": originals, "distractors": distractors, "seed": seed}
    if truth_file.is_file() and json.loads(truth_file.read_text()).get("made_with") == wanted:
        return root
    (root / "originals").mkdir(parents=True, exist_ok=True)
    (root / "queries").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(TRANSFORMS)
    truth: dict[str, list] = {}
    for i in range(originals):
        image = picture(rng)
        name = f"orig_{i:05d}.png"
        image.save(root / "originals" / name, compress_level=PNG_LEVEL)
        for t in rng.choice(len(names), COPIES_PER_ORIGINAL, replace=False):
            copy = TRANSFORMS[names[t]](image, rng)
            query = f"copy_{i:05d}_{t}.{'jpg' if names[t].startswith('jpeg') else 'png'}"
            _save(copy, root / "queries" / query)
            truth[query] = [name, names[t]]
    for i in range(distractors):
        query = f"other_{i:05d}.png"
        picture(rng).save(root / "queries" / query, compress_level=PNG_LEVEL)
        truth[query] = [None, DISTRACTOR]
    truth_file.write_text(json.dumps({"made_with": wanted, "queries": truth}, indent=1) + "\n")
    return root


def _save(copy: Image.Image | bytes, path: Path) -> None:
    """JPEG copies are their encoder's bytes (saving them again would encode twice); others go to PNG."""
    if isinstance(copy, bytes):
        path.write_bytes(copy)
    else:
        copy.save(path, compress_level=PNG_LEVEL)


def load_truth(root: str | Path) -> dict[str, tuple[str | None, str]]:
    """{query file name: (original file name or None, transform name)}."""
    return {q: (o, t) for q, (o, t) in json.loads((Path(root) / "truth.json").read_text())["queries"].items()}
