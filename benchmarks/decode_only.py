"""The decode-only baseline a user would write: a pool of N spawned processes opening every image
file of a folder with PIL and converting it to RGB pixels, nothing else. Prints the images decoded.
It imports only PIL and numpy, so its start-up is what such a script's start-up costs.

    python benchmarks/decode_only.py FOLDER [--workers N] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from PIL import Image


def decode(paths: list[str]) -> int:
    decoded = 0
    for path in paths:
        try:
            decoded += np.asarray(Image.open(path).convert("RGB")).shape[0] > 0
        except Exception:  # noqa: BLE001 - a broken file counts as not decoded
            pass
    return decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(args.folder) for name in names)
    batches = [paths[i : i + args.batch] for i in range(0, len(paths), args.batch)]
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        print(sum(pool.map(decode, batches)))


if __name__ == "__main__":
    main()
