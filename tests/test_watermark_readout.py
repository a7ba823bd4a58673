"""The integer watermark readout (`block_bits`) against the invisible-watermark library, block by
block: asking the library for a key as long as the image has blocks makes every block its own vote,
so the two readouts must agree bit for bit on every block, not only after voting."""

from __future__ import annotations

import numpy as np
import pytest

from audit.detectors import watermark
from audit.detectors.watermark import KNOWN_KEYS, block_bits, decode_bits, embed_watermark, vote


def _blocks(shape: tuple[int, ...]) -> int:
    """How many 4x4 blocks of the Haar band the library reads from an image of this shape."""
    return (shape[0] // 4 * 4 // 2 // 4) * (shape[1] // 4 * 4 // 2 // 4)


def _random_image(rng: np.random.Generator, kind: int) -> np.ndarray:
    """Sizes that are and are not multiples of 8; noise, smooth, flat and few-level images (the last
    two put many blocks where the library's rounding decides the bit)."""
    h, w = (int(v) for v in rng.integers(256, 330, 2))
    if kind == 0:
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == 1:
        return np.clip(rng.normal(rng.integers(40, 220), 4, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == 2:
        image = np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        image[rng.integers(0, h, 200), rng.integers(0, w, 200)] = rng.integers(0, 256, 3)
        return image
    return (rng.integers(0, 5, (h, w, 3)) * 9 * rng.integers(1, 7)).clip(0, 255).astype(np.uint8)


def _unsure_blocks(bgr: np.ndarray) -> int:
    sums = watermark.strongest_sums(watermark.pixel_pair_sums(watermark.u_plane(bgr)))
    return int((sums % watermark.SCALE == 0).sum())


def test_every_block_bit_equals_the_library_on_random_images():
    rng = np.random.default_rng(29)
    unsure = 0
    for i in range(24):
        rgb = _random_image(rng, i % 4)
        if i % 5 == 4:
            rgb = embed_watermark(rgb, KNOWN_KEYS[i % len(KNOWN_KEYS)], rgb_order=bool(i % 2))
        # a channel-flipped view (the detector's BGR order), the RGB array itself, and a contiguous BGR copy
        for pixels in (rgb[:, :, ::-1], rgb, np.ascontiguousarray(rgb[:, :, ::-1])):
            library = decode_bits(np.ascontiguousarray(pixels), _blocks(pixels.shape))
            assert np.array_equal(block_bits(pixels).astype(np.uint8), library), (i, pixels.shape)
            unsure += _unsure_blocks(pixels)
    assert unsure > 50  # the blocks whose bit the library's rounding decides were exercised


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the library averages empty vote lists (nan, read as 0)
@pytest.mark.parametrize("shape", [(4, 16384), (7, 10000), (8, 8192)])
def test_thin_strips_read_as_the_library_reads_them(shape):
    """Enough pixels for the detector, but fewer than 8 rows: no whole block (the last shape has one row of them)."""
    rgb = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    blocks = _blocks(shape)
    for pixels in (rgb[:, :, ::-1], rgb):
        readout = block_bits(pixels)
        assert len(readout) == blocks
        if blocks:
            assert np.array_equal(readout.astype(np.uint8), decode_bits(np.ascontiguousarray(pixels), blocks))
        for key in KNOWN_KEYS:
            n = len(key.bits)
            assert np.array_equal(vote(readout, n), decode_bits(np.ascontiguousarray(pixels), n))


@pytest.mark.parametrize("length", [5, 32, 48, 224, 2000])
def test_vote_counts_each_block_for_bit_i_modulo_the_length(length):
    bits = np.random.default_rng(length).integers(0, 2, 1200).astype(np.float64)
    slot = np.arange(len(bits)) % length
    expected = np.zeros(length, np.uint8)
    for b in range(min(length, len(bits))):
        expected[b] = bits[slot == b].mean() * 255 > 127
    assert np.array_equal(vote(bits, length), expected)
