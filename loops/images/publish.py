"""How images appear online, and how a scraper gets them back.

`render` turns model-resolution grey images into the files a scrape would find: PNG, upscaled
by an integer factor (nearest neighbour) to at least `size` x `size` RGB, a public generator
watermark embedded in a share (`watermark_rate`) of the synthetic ones, and optional "internet transforms" applied with
probability `transform_rate` to real and synthetic files alike: a downscale by `resize`, then JPEG
at `jpeg_quality` (either may strip a watermark). `scrape` decodes a file back to the model's
resolution (grey, area-resized), which is what the next generation trains on. Without
transforms that round trip is lossless (the watermark averages out); a smooth (bicubic) upscale
instead blurred every round trip, which alone moved the classifier FID of real MNIST from 3 to 28
and compounded over generations.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

DEFAULT_WATERMARK = "Stable Diffusion 1.x"  # the KNOWN_KEYS generator whose key is embedded


@dataclass(frozen=True)
class PublishSettings:
    size: int = 256
    watermark_rate: float = 0.5
    watermark: str = DEFAULT_WATERMARK
    jpeg_quality: int | None = None
    resize: float | None = None
    transform_rate: float = 1.0


@dataclass
class Published:
    files: list[bytes]
    watermarked: np.ndarray  # (m,) bool: a watermark was embedded
    transformed: np.ndarray  # (m,) bool: the internet transforms were applied
    originals: list[bytes] | None  # with keep_originals: the files before any transform


def render(
    images: np.ndarray,
    synthetic: bool,
    rng: np.random.Generator,
    settings: PublishSettings,
    keep_originals: bool = False,
) -> Published:
    m = len(images)
    marked = (rng.random(m) < settings.watermark_rate) & synthetic
    has_transforms = settings.jpeg_quality is not None or settings.resize is not None
    transformed = (rng.random(m) < settings.transform_rate) & has_transforms
    key = _watermark_key(settings.watermark) if marked.any() else None
    keys = [key if marked[i] else None for i in range(m)]
    files = [_render_one(image, keys[i], bool(transformed[i]), settings) for i, image in enumerate(images)]
    originals = (
        [_render_one(image, keys[i], False, settings) if transformed[i] else files[i] for i, image in enumerate(images)]
        if keep_originals
        else None
    )
    return Published(files, marked, transformed, originals)


def scrape(data: bytes, resolution: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L").resize((resolution, resolution), Image.BOX))


def _render_one(image: np.ndarray, key, transform: bool, settings: PublishSettings) -> bytes:
    from PIL import Image

    from audit.detectors.watermark import embed_watermark

    scale = -(-settings.size // min(image.shape))
    picture = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    rgb = np.asarray(picture.convert("RGB"))
    if key is not None:
        rgb = embed_watermark(rgb, key)
    picture = Image.fromarray(rgb)
    if transform and settings.resize is not None:
        size = (max(1, round(picture.width * settings.resize)), max(1, round(picture.height * settings.resize)))
        picture = picture.resize(size, Image.LANCZOS)
    out = io.BytesIO()
    if transform and settings.jpeg_quality is not None:
        picture.save(out, "JPEG", quality=settings.jpeg_quality)
    else:
        picture.save(out, "PNG")
    return out.getvalue()


def _watermark_key(generator: str):
    from audit.detectors.watermark import KNOWN_KEYS

    for key in KNOWN_KEYS:
        if key.generator == generator:
            return key
    raise ValueError(f"unknown watermark {generator!r}; known: {', '.join(k.generator for k in KNOWN_KEYS)}")
