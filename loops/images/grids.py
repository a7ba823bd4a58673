"""Sample grids: the first images of a generation tiled into one PNG (grey uint8 (N, H, W)), and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.atomic import write_atomically

GRID_SIDE = 8
GRID_SCALE = 2


def grid_image(images: np.ndarray, side: int = GRID_SIDE) -> np.ndarray:
    n, h, w = images.shape
    tiles = np.zeros((side * side, h, w), np.uint8)
    tiles[: min(n, side * side)] = images[: side * side]
    return tiles.reshape(side, side, h, w).transpose(0, 2, 1, 3).reshape(side * h, side * w)


def save_grid(images: np.ndarray, path: Path) -> None:
    from PIL import Image

    picture = Image.fromarray(grid_image(images))
    picture = picture.resize((picture.width * GRID_SCALE, picture.height * GRID_SCALE), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(Path(path), lambda p: picture.save(p, "PNG"))


def load_grid(path: Path, size: int, side: int = GRID_SIDE) -> np.ndarray:
    """The (side*side, size, size) images a grid of `save_grid` holds (unfilled tiles are black)."""
    from PIL import Image

    with Image.open(path) as picture:
        pixels = np.asarray(picture.convert("L"))[::GRID_SCALE, ::GRID_SCALE]
    if pixels.shape != (side * size, side * size):
        raise ValueError(
            f"{path}: a {side}x{side} grid of {size}x{size} images is {side * size} pixels a side "
            f"(after scale {GRID_SCALE}), got {pixels.shape}"
        )
    return pixels.reshape(side, size, side, size).transpose(0, 2, 1, 3).reshape(side * side, size, size)
