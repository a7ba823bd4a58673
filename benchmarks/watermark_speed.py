"""Watermark detection speed: the scan's whole watermark detector (`WatermarkDetector`: the
one-pass readout, `block_bits` once per channel order, a vote per key, every key's p-value and
the decision) against the same work done with invisible-watermark (one `decode` call per key
and order, a Python loop over blocks each time, then the same p-values and decision).

    python benchmarks/watermark_speed.py [--repeat R]

Each of the R runs times both, one after the other, over the whole image set; the table gives
the median speed over the runs with the min-max range, and the median of the paired ratios.

Images: scikit-image's bundled photographs at their own sizes, and the same photographs
resized to the sizes generators emit (512x512 for SD 1.x/2.x, 1024x1024 for SDXL). Both
decoders must return identical bits; the benchmark checks it before timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from audit.demo import REAL_PHOTOS, sample_photo
from audit.detectors.watermark import KNOWN_KEYS, WatermarkDetector, block_bits, decode_bits, match_p_value, vote

LENGTHS = [len(key.bits) for key in KNOWN_KEYS]
DETECTOR = WatermarkDetector()


@dataclass
class _Decoded:
    rgb: np.ndarray

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]


def orders(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image in both channel orders the scan tries (BGR as the library expects, and RGB)."""
    return np.ascontiguousarray(rgb[:, :, ::-1]), rgb


def one_pass(rgb: np.ndarray) -> list[np.ndarray]:
    return [vote(readout, n) for readout in map(block_bits, orders(rgb)) for n in LENGTHS]


def library(rgb: np.ndarray) -> list[np.ndarray]:
    return [decode_bits(pixels, n) for pixels in orders(rgb) for n in LENGTHS]


def image_sets() -> dict[str, list[np.ndarray]]:
    photos = [sample_photo(name) for name in REAL_PHOTOS]
    sized = {
        f"{s}x{s}": [np.asarray(Image.fromarray(p).resize((s, s), Image.BICUBIC)) for p in photos] for s in (512, 1024)
    }
    return {"own sizes": photos, **sized}


def detector_path(rgb: np.ndarray):
    """What the scan runs per image: bits, p-values and the decision."""
    return DETECTOR._detect_one(_Decoded(rgb))


def library_path(rgb: np.ndarray):
    """The same decision from invisible-watermark's decoder: bits per key and order, then p-values."""
    tests = []
    for pixels in orders(rgb):
        for key, needed in zip(KNOWN_KEYS, DETECTOR.cutoffs):
            n = len(key.bits)
            matches = int((decode_bits(pixels, n) == np.asarray(key.bits, dtype=np.uint8)).sum())
            tests.append((match_p_value(matches, n), matches >= needed, key.generator))
    return min(tests)


def paired_runs(images: list[np.ndarray], repeat: int) -> tuple[list[float], list[float]]:
    """Images per second of the library path and of the detector, run after run."""
    slow, fast = [], []
    for _ in range(repeat):
        for decode, speeds in ((library_path, slow), (detector_path, fast)):
            start = time.perf_counter()
            for rgb in images:
                decode(rgb)
            speeds.append(len(images) / (time.perf_counter() - start))
    return slow, fast


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="paired timed runs; medians are reported")
    args = parser.parse_args()
    table = Table(
        title=f"whole watermark detector, {len(KNOWN_KEYS)} keys x 2 channel orders, 1 process, median of "
        f"{args.repeat} paired runs (min-max) ({os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()})"
    )
    for column in ("images", "n", "invisible-watermark img/s", "detector img/s", "speed-up (median of pairs)"):
        table.add_column(column, justify="left" if column == "images" else "right")
    for label, images in image_sets().items():
        for rgb in images:
            assert all(np.array_equal(a, b) for a, b in zip(one_pass(rgb), library(rgb))), (label, rgb.shape)
        slow, fast = paired_runs(images, args.repeat)
        ratios = [f / s for s, f in zip(slow, fast)]
        table.add_row(
            label,
            str(len(images)),
            spread(slow),
            spread(fast),
            f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
