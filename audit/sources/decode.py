"""Decode image bytes once, safely: pixel limits, odd modes, EXIF orientation, metadata kept.

Every failure is a `DecodeError` with a short reason that becomes the row's `error`.
"""
from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_PIXEL_LIMIT = 100_000_000  # 100 MP: larger images are refused as decompression bombs
MAX_FILE_BYTES = 256 * 1024 * 1024  # encoded bytes of one item; larger items are error rows, never read
MAX_METADATA_BYTES = 4 * 1024 * 1024  # per metadata field (text chunk, XMP packet, EXIF block)
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
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
            ZeroDivisionError, MemoryError, struct.error) as e:
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
    frames = int(getattr(im, "n_frames", 1) or 1)
    info = {key: _capped(value) for key, value in im.info.items()}
    exif = _exif_dict(im)
    alpha = _alpha(im)
    oriented = _oriented(im)
    return DecodedImage(rgb=_to_rgb_array(oriented), alpha=alpha, format=im.format or "",
                        mode=im.mode, info=info, exif=exif, frames=frames)


def _capped(value):
    """Metadata as stored, but text and bytes cut at MAX_METADATA_BYTES: no detector reads more."""
    return value[:MAX_METADATA_BYTES] if isinstance(value, (str, bytes)) else value


# EXIF orientation -> the transposition that undoes it (as ImageOps.exif_transpose applies them).
_ORIENTATION_FIXES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                      4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                      6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _oriented(im: Image.Image) -> Image.Image:
    """The image with its EXIF orientation applied. Pillow's exif_transpose also rewrites the EXIF
    block and fails on malformed tags; then the orientation is applied by hand, the EXIF left alone."""
    try:
        return ImageOps.exif_transpose(im) or im
    except Exception:  # noqa: BLE001 - malformed EXIF (type confusion) must not cost the pixels
        pass
    try:
        orientation = im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001
        return im
    method = _ORIENTATION_FIXES.get(orientation) if isinstance(orientation, int) else None
    return im if method is None else im.transpose(method)


def _alpha(im: Image.Image) -> np.ndarray | None:
    if im.mode in ("RGBA", "LA", "PA"):
        return np.asarray(im.getchannel("A"), dtype=np.uint8)
    if im.mode == "P" and "transparency" in im.info:
        return np.asarray(im.convert("RGBA").getchannel("A"), dtype=np.uint8)
    return None


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """8-bit RGB pixels from any mode (16-bit and float are rescaled, alpha is dropped)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        scale = 257.0 if im.mode.startswith("I;16") else max(a.max(), 1.0) / 255.0
        gray = np.clip(a / scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode != "RGB":
        im = im.convert("RGBA" if "A" in im.mode else "RGB").convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


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
