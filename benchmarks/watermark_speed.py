"""Watermark decoding speed: every known key in both channel orders, the one-pass decoder
(`block_bits` once per channel order + `vote` per key) against invisible-watermark decoding the
same keys (one `decode` call per key and order, a Python loop over blocks each time).

    python benchmarks/watermark_speed.py [--repeat R]

Images: scikit-image's bundled photographs at their own sizes, and the same photographs
resized to the sizes generators emit (512x512 for SD 1.x/2.x, 1024x1024 for SDXL). Both
decoders must return identical bits; the benchmark checks it before timing.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from audit.demo import REAL_PHOTOS, sample_photo
from audit.detectors.watermark import KNOWN_KEYS, block_bits, decode_bits, vote

LENGTHS = [len(key.bits) for key in KNOWN_KEYS]


def orders(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image in both channel orders the scan tries (BGR as the library expects, and RGB)."""
    return np.ascontiguousarray(rgb[:, :, ::-1]), rgb


def one_pass(rgb: np.ndarray) -> list[np.ndarray]:
    return [vote(readout, n) for readout in map(block_bits, orders(rgb)) for n in LENGTHS]


def library(rgb: np.ndarray) -> list[np.ndarray]:
    return [decode_bits(pixels, n) for pixels in orders(rgb) for n in LENGTHS]


def image_sets() -> dict[str, list[np.ndarray]]:
    photos = [sample_photo(name) for name in REAL_PHOTOS]
    sized = {f"{s}x{s}": [np.asarray(Image.fromarray(p).resize((s, s), Image.BICUBIC)) for p in photos]
             for s in (512, 1024)}
    return {"own sizes": photos, **sized}


def seconds_per_image(decode, images: list[np.ndarray], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for rgb in images:
            decode(rgb)
        best = min(best, time.perf_counter() - start)
    return best / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per decoder; the best is kept")
    args = parser.parse_args()
    table = Table(title=f"{len(KNOWN_KEYS)} keys x 2 channel orders, 1 process "
                        f"({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
    for column in ("images", "n", "library img/s", "one-pass img/s", "speed-up"):
        table.add_column(column, justify="left" if column == "images" else "right")
    for label, images in image_sets().items():
        for rgb in images:
            assert all(np.array_equal(a, b) for a, b in zip(one_pass(rgb), library(rgb))), (label, rgb.shape)
        slow = seconds_per_image(library, images, args.repeat)
        fast = seconds_per_image(one_pass, images, args.repeat)
        table.add_row(label, str(len(images)), f"{1 / slow:.1f}", f"{1 / fast:.1f}", f"{slow / fast:.1f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
