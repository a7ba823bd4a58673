"""Decode image bytes once, safely: pixel limits, odd modes, EXIF orientation, metadata kept.

Every failure is a `DecodeError` with a short reason that becomes the row's `error`.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_PIXEL_LIMIT = 100_000_000  # 100 MP: larger images are refused as decompression bombs
MAX_FILE_BYTES = 256 * 1024 * 1024  # encoded bytes of one item; larger items are error rows, never read
MAX_METADATA_BYTES = 4 * 1024 * 1024  # per metadata field (text chunk, XMP packet, EXIF block)
STRIP_BYTES = 16 * 1024 * 1024  # pixels are converted to RGB this many bytes (8 a pixel at most) at a time
# The only formats Pillow may open, whatever a file's name says (no DDS, SPIDER, EPS, ... by content).
PILLOW_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")  # JPEG includes MPO

# Leading bytes of the formats we decode; used to decide "is this an image" by content.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


class DecodeError(Exception):
    """The image cannot be used; the message is the reason recorded in the results."""


def sniff_format(head: bytes) -> str | None:
    """Image format from the first bytes of a file, or None when it is not an image we read."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


@dataclass
class DecodedImage:
    """What detectors see: normalised pixels plus the file's own metadata, untouched."""

    rgb: np.ndarray  # H x W x 3 uint8, EXIF orientation applied, first frame
    alpha: np.ndarray | None  # H x W uint8 alpha of the stored image (before orientation), if any
    format: str
    mode: str  # the stored mode, e.g. "RGB", "CMYK", "I;16", "P"
    info: dict = field(default_factory=dict)  # PIL Image.info: PNG text chunks, xmp, exif bytes, ...
    exif: dict = field(default_factory=dict)  # tag name -> value, base IFD and Exif IFD merged
    frames: int = 1

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(data: bytes, pixel_limit: int = DEFAULT_PIXEL_LIMIT) -> DecodedImage:
    """Decode bytes into a `DecodedImage` or raise `DecodeError` with a reason."""
    if not data:
        raise DecodeError("empty file")
    if len(data) > MAX_FILE_BYTES:
        raise DecodeError(f"file too large ({len(data)} bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bomb warnings (our own limit applies) and corrupt-metadata noise
            im = _open_checked(data, pixel_limit)
            return _normalise(im)
    except DecodeError:
        raise
    except Image.DecompressionBombError as e:
        raise DecodeError(f"decompression bomb: {e}") from None
    except UnidentifiedImageError:
        claimed = sniff_format(data[:16])
        if claimed:
            raise DecodeError(f"corrupt image: {claimed} signature but undecodable") from None
        raise DecodeError("not an image (unidentified format)") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        KeyError,
        TypeError,
        ZeroDivisionError,
        MemoryError,
        struct.error,
    ) as e:
        raise DecodeError(f"corrupt image: {type(e).__name__}: {e}") from None
    except Exception as e:  # noqa: BLE001 - whatever a hostile file makes Pillow raise costs only this item
        raise DecodeError(internal_error(e)) from None


def internal_error(e: BaseException) -> str:
    """The reason recorded for an unexpected exception on one item (the scan goes on)."""
    return f"internal error: {type(e).__name__}: {e}"[:500]


def _open_checked(data: bytes, pixel_limit: int) -> Image.Image:
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we apply our own, configurable limit below
    try:
        im = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    w, h = im.size
    if w * h > pixel_limit:
        raise DecodeError(f"decompression bomb: {w}x{h} = {w * h} pixels exceeds the limit {pixel_limit}")
    if w == 0 or h == 0:
        raise DecodeError("image has zero width or height")
    im.load()
    return im


def _normalise(im: Image.Image) -> DecodedImage:
    """Metadata, alpha and RGB pixels of an opened image; the image's own pixel memory is released
    as soon as the RGB array holds them, before the orientation is applied to the array."""
    frames = int(getattr(im, "n_frames", 1) or 1)
    info = {key: _capped(value) for key, value in im.info.items()}
    exif = _exif_dict(im)
    alpha = _alpha(im)
    method = _orientation(im)
    fmt, mode = im.format or "", im.mode
    rgb = _to_rgb_array(im)
    im.close()  # Pillow holds 4 bytes a pixel: free them before the oriented copy is made
    return DecodedImage(
        rgb=_oriented_array(rgb, method), alpha=alpha, format=fmt, mode=mode, info=info, exif=exif, frames=frames
    )


def _capped(value):
    """Metadata as stored, but text and bytes cut at MAX_METADATA_BYTES: no detector reads more."""
    return value[:MAX_METADATA_BYTES] if isinstance(value, (str, bytes)) else value


# EXIF orientation -> the transposition that undoes it (as ImageOps.exif_transpose applies them).
_ORIENTATION_FIXES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(im: Image.Image) -> Image.Transpose | None:
    """The transposition that undoes the image's EXIF orientation (the one ImageOps.exif_transpose
    applies), or None; malformed EXIF (type confusion) means none, and never costs the pixels."""
    try:
        orientation = im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001
        return None
    return _ORIENTATION_FIXES.get(orientation) if isinstance(orientation, int) else None


# The transpositions as views of an H x W x C array (copied once, contiguous, by _oriented_array).
_ARRAY_TRANSPOSES = {
    Image.Transpose.FLIP_LEFT_RIGHT: lambda a: a[:, ::-1],
    Image.Transpose.ROTATE_180: lambda a: a[::-1, ::-1],
    Image.Transpose.FLIP_TOP_BOTTOM: lambda a: a[::-1],
    Image.Transpose.TRANSPOSE: lambda a: a.transpose(1, 0, 2),
    Image.Transpose.ROTATE_270: lambda a: a[::-1].transpose(1, 0, 2),
    Image.Transpose.TRANSVERSE: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    Image.Transpose.ROTATE_90: lambda a: a[:, ::-1].transpose(1, 0, 2),
}


def _oriented_array(rgb: np.ndarray, method: Image.Transpose | None) -> np.ndarray:
    """`rgb` as Pillow's `transpose(method)` would turn it (the same pixels, tested)."""
    return rgb if method is None else np.ascontiguousarray(_ARRAY_TRANSPOSES[method](rgb))


def _alpha(im: Image.Image) -> np.ndarray | None:
    if im.mode in ("RGBA", "LA", "PA"):
        return np.asarray(im.getchannel("A"), dtype=np.uint8)
    if im.mode == "P" and "transparency" in im.info:
        return np.asarray(im.convert("RGBA").getchannel("A"), dtype=np.uint8)
    return None


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """8-bit RGB pixels from any mode (16-bit and float are rescaled, alpha is dropped), converted a
    strip of rows at a time into one array: memory grows by the array and one strip, never by a
    second converted copy of the whole image."""
    width, height = im.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    scale = _gray_scale(im)
    rows = max(1, STRIP_BYTES // (8 * width))
    for top in range(0, height, rows):
        strip = im if rows >= height else im.crop((0, top, width, min(height, top + rows)))  # one strip: no copy
        out[top : top + strip.height] = _strip_rgb(strip, scale)
    return out


def _gray_scale(im: Image.Image) -> float | None:
    """What 16-bit and 32-bit single-channel pixels are divided by (the image's maximum for I and F)."""
    if im.mode.startswith("I;16"):
        return 257.0
    if im.mode in ("I", "F"):
        return max(float(im.getextrema()[1]), 1.0) / 255.0
    return None


def _strip_rgb(im: Image.Image, scale: float | None) -> np.ndarray:
    if scale is not None:
        gray = np.clip(np.asarray(im, dtype=np.float64) / scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode != "RGB":
        im = im.convert("RGBA" if "A" in im.mode else "RGB").convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def _exif_dict(im: Image.Image) -> dict:
    """EXIF tags by name (base IFD and Exif sub-IFD merged); empty when absent or broken."""
    from PIL import ExifTags

    try:
        exif = im.getexif()
        tags = dict(exif)
        tags.update(exif.get_ifd(ExifTags.IFD.Exif))
    except Exception:  # noqa: BLE001 - broken EXIF is common and never fatal
        return {}
    return {ExifTags.TAGS.get(k, str(k)): v for k, v in tags.items()}


def image_pixels(data: bytes) -> int | None:
    """Width x height from the image's header (nothing decoded), or None when it cannot be read."""
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as im:
                width, height = im.size
        return width * height
    except Exception:  # noqa: BLE001 - the decoder records what is wrong with the file
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
