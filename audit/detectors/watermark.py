"""Invisible DWT-DCT watermarks of public generators, decoded with invisible-watermark.

The decoder always returns bits, so the decision rests on how many bits match a known key:
we report matches/length and the binomial p-value of that many matches from random bits.
Both channel orders are tried, because diffusers before 0.28 embedded in RGB order where the
library expects BGR. Every image is thus tested against each key in each order (5 known keys x
2 orders = 10 tests), and an unmarked image would match *some* key ten times as often as one
test would. So `p_threshold` (default 1e-6) bounds the chance per image of any false match, split
over the tests actually made (Bonferroni) with each key's length in mind (`key_cutoffs`): a key of
L bits can only reach certain p-values, so it takes the fewest matching bits whose p-value is
below its share, usually spending less than the share; what it leaves passes on to the keys still
to be set, longest keys first, so the short keys, whose p-values are the coarsest, get the most.
With the known keys a test needs p below 1e-7 to 3e-7 (SD 2.x: 30 of 32 bits, SDXL: 42 of 48) and
an unmarked image matches some key with chance 6.4e-7 (`false_match_rate`, under the 1e-6 asked
for); a scan's summary gives that rate times the images tested, the number of watermark matches
expected on unmarked images.

Decoding is done in one pass (`block_bits`): the library's dwtDct scheme reads one bit per
4x4 block of the U channel's Haar approximation band and votes bit i%L for a key of length L,
so one readout per channel order serves every key: one colour conversion and one Haar step per
order (the two orders weigh the channels differently, so each has its own U plane). Only the
rows and columns that make whole blocks are converted. The Haar step runs on integers: a band
coefficient is the sum s of its 2x2 pixels over 2, give or take 1e-12, so the strongest
coefficient of a block and its bit follow from the sums alone, except where s/2 falls on a
multiple of 18, where the bit depends on the library's floating-point rounding; those few
blocks are computed with pywt's own arithmetic. `decode_bits` keeps the library itself as the
reference, and the tests check that both return identical bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np

from audit.detectors.base import NEEDS_PIXELS, NO_EVIDENCE, SYNTHETIC, Signal, not_applicable

MIN_PIXELS = 256 * 256  # the library refuses smaller images: too few blocks to carry a key
DEFAULT_P_THRESHOLD = 1e-6  # per image: the chance that an unmarked image matches some key in some order
ORDERS = ("BGR", "RGB")  # channel orders read: the library's, and diffusers < 0.28's
SCALE = 36  # the library's embedding step for dwtDct (scales=[0, 36, 36]; only U is read back)
BLOCK = 4


@dataclass(frozen=True)
class WatermarkKey:
    generator: str
    bits: tuple[int, ...]

    @classmethod
    def from_bytes(cls, generator: str, payload: bytes) -> WatermarkKey:
        return cls(generator, tuple(int(b) for b in np.unpackbits(np.frombuffer(payload, dtype=np.uint8))))

    @classmethod
    def from_bitstring(cls, generator: str, bits: str) -> WatermarkKey:
        bits = bits.removeprefix("0b")
        if not bits or set(bits) - {"0", "1"}:
            raise ValueError(f"watermark key {generator!r}: not a bit string: {bits!r}")
        return cls(generator, tuple(int(b) for b in bits))

    @classmethod
    def parse(cls, spec: str) -> WatermarkKey:
        """User key spec: `NAME=bytes:TEXT`, `NAME=bits:0101...` or `NAME=hex:DEADBEEF`."""
        name, sep, rest = spec.partition("=")
        kind, sep2, value = rest.partition(":")
        if not (sep and sep2 and name and value):
            raise ValueError(f"bad watermark key {spec!r}: expected NAME=bytes:TEXT, NAME=bits:0101 or NAME=hex:ABCD")
        if kind == "bytes":
            return cls.from_bytes(name, value.encode())
        if kind == "hex":
            return cls.from_bytes(name, bytes.fromhex(value))
        if kind == "bits":
            return cls.from_bitstring(name, value)
        raise ValueError(f"bad watermark key {spec!r}: kind must be bytes, bits or hex, not {kind!r}")


KNOWN_KEYS = (
    WatermarkKey.from_bytes("Stable Diffusion 1.x", b"StableDiffusionV1"),
    WatermarkKey.from_bytes("Stable Diffusion 1.x inpainting", b"StableDiffusionV1-Inpainting"),
    WatermarkKey.from_bytes("Stable Diffusion 2.x", b"SDV2"),
    WatermarkKey.from_bitstring("SDXL", "101100111110110010010000011110111011000110011110"),
    WatermarkKey.from_bytes("InvokeAI", b"InvokeAI"),
)


def decode_bits(bgr: np.ndarray, length: int) -> np.ndarray:
    """The library's reference decode of `length` bits from a BGR uint8 image."""
    from imwatermark import WatermarkDecoder

    return np.asarray(WatermarkDecoder("bits", length).decode(bgr, "dwtDct"), dtype=np.uint8)


def embed_watermark(rgb: np.ndarray, key: WatermarkKey, rgb_order: bool = False) -> np.ndarray:
    """`rgb` with `key` embedded by the library (as generators do); rgb_order mimics diffusers < 0.28."""
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", list(key.bits))
    if rgb_order:
        return encoder.encode(np.ascontiguousarray(rgb), "dwtDct")
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return np.ascontiguousarray(encoder.encode(bgr, "dwtDct")[:, :, ::-1])


def block_bits(bgr: np.ndarray) -> np.ndarray:
    """One bit per 4x4 block, in the library's block order, read as its dwtDct decoder reads them.

    The decoder takes the block's largest coefficient but its first (|c| at the argmax; all are
    >= 0 here, U being 0..255) and reads 1 when c % 36 > 18. With s the block's 2x2 pixel sums,
    c = s / 2 up to rounding far below 0.5, so c % 36 > 18 exactly when s % 72 > 36, unless
    s % 36 == 0, where the rounding decides (see `_exact_bits`)."""
    if min(bgr.shape[:2]) < 2 * BLOCK:  # no whole block (a thin strip): nothing to read, as for the library
        return np.zeros(0)
    u = u_plane(bgr)
    sums = pixel_pair_sums(u)
    best = strongest_sums(sums)
    bits = best % (2 * SCALE) > SCALE
    unsure = best % SCALE == 0
    if unsure.any():
        bits[unsure] = _exact_bits(u, unsure)
    return bits.ravel().astype(np.float64)


def u_plane(bgr: np.ndarray) -> np.ndarray:
    """The U channel of OpenCV's BGR->YUV conversion (as the library converts), cropped to the pixels
    whose Haar coefficients make whole 4x4 blocks (8x8 pixels each); the rest is never read."""
    cv2 = _opencv()
    rows, cols = bgr.shape[0] // (2 * BLOCK) * 2 * BLOCK, bgr.shape[1] // (2 * BLOCK) * 2 * BLOCK
    rgb = bgr[:rows, :cols, ::-1]
    if rgb.strides[2] > 0 and rgb.strides[1] == 3 * rgb.strides[2] == 3:  # a channel-flipped view: no copy
        return cv2.extractChannel(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV), 1)
    return cv2.extractChannel(cv2.cvtColor(np.ascontiguousarray(bgr[:rows, :cols]), cv2.COLOR_BGR2YUV), 1)


@lru_cache(maxsize=1)
def _opencv():
    """OpenCV, on one thread: a scan runs one worker per core, and the conversion of one image is too
    small for OpenCV's threads to do more than wait on each other and on the other workers."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


def pixel_pair_sums(u: np.ndarray) -> np.ndarray:
    """Twice the Haar approximation band, in integers: the sum of each 2x2 pixel square."""
    rows = np.add(u[0::2], u[1::2], dtype=np.uint16)
    return rows[:, 0::2] + rows[:, 1::2]


def strongest_sums(sums: np.ndarray) -> np.ndarray:
    """The largest value of each 4x4 block of `sums` but its first (the library skips the block's DC)."""
    right = np.maximum(np.maximum(sums[:, 1::BLOCK], sums[:, 2::BLOCK]), sums[:, 3::BLOCK])
    whole = np.maximum(right, sums[:, 0::BLOCK])
    return np.maximum(np.maximum(right[0::BLOCK], whole[1::BLOCK]), np.maximum(whole[2::BLOCK], whole[3::BLOCK]))


def _exact_bits(u: np.ndarray, which: np.ndarray) -> np.ndarray:
    """The bits of the blocks marked in `which`, from coefficients computed by pywt as the library does
    (dwt2 of a square of 8x8 pixels gives that square's coefficients of the whole image's dwt2)."""
    size = 2 * BLOCK
    rows, cols = np.nonzero(which)
    tiles = u.reshape(which.shape[0], size, which.shape[1], size)[rows, :, cols, :]  # (k, 8, 8)
    band = haar_approximation(tiles.reshape(-1, size)).reshape(-1, BLOCK * BLOCK)
    return band[:, 1:].max(axis=1) % SCALE > 0.5 * SCALE


def haar_approximation(u: np.ndarray) -> np.ndarray:
    """`pywt.dwt2(u, "haar")[0]`, bit for bit, several times faster on power-of-two heights.

    dwt2 filters along the columns, then along the rows. Filtering columns in place walks memory
    with a large stride, which thrashes the cache when the row length is a power of two (a 512x512
    image: 5 ms of the 6 ms readout); here both passes run along rows of transposed copies,
    with pywt's own 1-D filter, so every coefficient is computed by the same arithmetic.
    """
    import pywt

    columns_filtered = pywt.dwt(np.ascontiguousarray(u.T, dtype=np.float64), "haar", axis=1)[0]
    return pywt.dwt(np.ascontiguousarray(columns_filtered.T), "haar", axis=1)[0]


def vote(bits: np.ndarray, length: int) -> np.ndarray:
    """The key bits a readout votes for: block i counts for bit i % length (the library's rule)."""
    whole = len(bits) // length * length
    sums = np.asarray(bits[:whole], dtype=np.float64).reshape(-1, length).sum(axis=0)
    sums[: len(bits) - whole] += bits[whole:]
    counts = np.full(length, len(bits) // length)
    counts[: len(bits) - whole] += 1
    with np.errstate(invalid="ignore"):  # a bit no block votes for: nan, read as 0 (as the library does)
        return (sums / counts * 255 > 127).astype(np.uint8)


@lru_cache(maxsize=4096)
def match_p_value(matches: int, length: int) -> float:
    """P(at least `matches` of `length` random bits agree with the key), computed exactly."""
    matches = max(0, matches)
    return sum(comb(length, k) for k in range(matches, length + 1)) / 2**length


def fewest_matches(length: int, per_test_threshold: float) -> int:
    """The fewest matching bits of a `length`-bit key whose p-value is below the threshold (length + 1: none)."""
    return next((m for m in range(length + 1) if match_p_value(m, length) < per_test_threshold), length + 1)


def key_cutoffs(lengths: Sequence[int], p_threshold: float, orders: int = len(ORDERS)) -> list[int]:
    """The fewest matching bits each key needs, so that an image of random bits matches some key in some
    order with chance at most `p_threshold` (a union bound over the tests): longest key first, each key's
    tests share equally what the keys before them left of `p_threshold`."""
    cutoffs = [0] * len(lengths)
    left = p_threshold
    for rank, i in enumerate(sorted(range(len(lengths)), key=lambda i: -lengths[i])):
        cutoffs[i] = fewest_matches(lengths[i], left / (len(lengths) - rank) / orders)
        left -= orders * match_p_value(cutoffs[i], lengths[i])
    return cutoffs


def false_match_rate(lengths: Sequence[int], cutoffs: Sequence[int], orders: int = len(ORDERS)) -> float:
    """Chance that an image of random bits matches some key in some order (a union bound over the tests)."""
    return min(1.0, orders * sum(match_p_value(m, n) for m, n in zip(cutoffs, lengths)))


class WatermarkDetector:
    name = "watermark"
    needs = frozenset({NEEDS_PIXELS})
    hard_evidence = True

    def __init__(self, keys: Sequence[WatermarkKey] = KNOWN_KEYS, p_threshold: float = DEFAULT_P_THRESHOLD):
        """p_threshold: the chance per image of a false match over all keys and orders (see the module)."""
        self.keys = tuple(keys)
        self.p_threshold = p_threshold
        self.tests = len(ORDERS) * len(self.keys)
        self._key_bits = [np.asarray(k.bits, dtype=np.uint8) for k in self.keys]
        lengths = [len(k.bits) for k in self.keys]
        self.cutoffs = key_cutoffs(lengths, p_threshold)
        self.false_match_rate = false_match_rate(lengths, self.cutoffs)

    def false_matches(self, tested: int) -> dict:
        """The multiple-testing correction and the false matches expected among `tested` unmarked images."""
        return {
            "p_threshold": self.p_threshold,
            "tests_per_image": self.tests,
            "bits_needed": {k.generator: f"{m}/{len(k.bits)}" for k, m in zip(self.keys, self.cutoffs)},
            "false_match_rate": self.false_match_rate,
            "tested": tested,
            "expected_false_matches": tested * self.false_match_rate,
        }

    def detect(self, batch) -> list[Signal]:
        return [self._detect_one(record.decoded()) for record in batch]

    def _detect_one(self, image) -> Signal:
        if image is None:
            return not_applicable("decode failed")
        if image.width * image.height < MIN_PIXELS:
            return not_applicable(f"too small for a watermark ({image.width}x{image.height} < 256x256)")
        tests = list(self._matches(image.rgb))
        found = [t for t in tests if t[1] >= t[4]]
        key, matches, p, order, _ = min(found or tests, key=lambda m: (m[2], -m[1] / len(m[0].bits)))
        n = len(key.bits)
        evidence = f"watermark {key.generator} {matches}/{n} bits ({order}), p={p:.1e}"
        extra = {"bits": f"{matches}/{n}", "p_value": p}
        if found:
            return Signal(score=1.0, decision=SYNTHETIC, evidence=evidence, generator=key.generator, extra=extra)
        return Signal(score=None, decision=NO_EVIDENCE, evidence="no known watermark; best " + evidence, extra=extra)

    def _matches(self, rgb: np.ndarray):
        """(key, matching bits, p-value, channel order, bits needed) for every key in both channel orders."""
        for order, pixels in zip(ORDERS, (rgb[:, :, ::-1], rgb)):
            readout = block_bits(pixels)
            for key, bits, needed in zip(self.keys, self._key_bits, self.cutoffs):
                n = len(bits)
                matches = int(np.count_nonzero(vote(readout, n) == bits))
                yield key, matches, match_p_value(matches, n), order, needed
