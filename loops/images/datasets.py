"""Labelled image datasets for the diffusion backend (`--dataset`).

Specs: `mnist:DIR` (idx files; every split the folder holds), `DIR` (an image folder with one
subfolder per class), `hf:NAME[:split]` (a Hugging Face dataset with an image and a label column).
Images become grey uint8 at the model's resolution (centre-cropped to a square, area-resized).
All images are pooled and split once, deterministically, into a real training pool and a held-out
real test set that no generation ever trains on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loops.errors import ConfigError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
SPLIT_SEED = 0


class ImageData:
    """Held-out test split and a training pool; `draw` returns (images, labels) without replacement."""

    is_gaussian = False
    labelled = True

    def __init__(self, images: np.ndarray, labels: np.ndarray, class_names: list[str], test_size: int, name: str):
        if len(images) != len(labels):
            raise ConfigError(f"--dataset {name}: {len(images)} images but {len(labels)} labels")
        if test_size >= len(images):
            raise ConfigError(
                f"--dataset {name}: {len(images)} images leave none for training after a test split of {test_size}"
            )
        order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
        test, train = order[:test_size], order[test_size:]
        self.test_images, self.test_labels = images[test], labels[test]
        self.train_images, self.train_labels = images[train], labels[train]
        self.class_names, self.name = class_names, name
        self.classes = len(class_names)
        self.resolution = images.shape[1]

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > len(self.train_images):
            raise ConfigError(
                f"--dataset {self.name}: cannot draw {n} images from {len(self.train_images)} "
                "training images (lower --samples-per-gen)"
            )
        chosen = rng.choice(len(self.train_images), size=n, replace=False)
        return self.train_images[chosen], self.train_labels[chosen]

    def test_set(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.test_images[:n]

    def class_histogram(self) -> np.ndarray:
        return np.bincount(self.train_labels, minlength=self.classes) / len(self.train_labels)


def load_image_data(spec: str, resolution: int, test_size: int) -> ImageData:
    try:
        if spec.startswith("mnist:"):
            images, labels, names = _mnist(spec[len("mnist:") :])
        elif spec.startswith("hf:"):
            images, labels, names = _hugging_face(spec[len("hf:") :])
        else:
            images, labels, names = _class_folders(Path(spec))
    except (OSError, ValueError) as e:
        raise ConfigError(f"--dataset {spec}: {e}") from None
    return ImageData(resize_grey(images, resolution), labels, names, test_size, spec)


def resize_grey(images, resolution: int) -> np.ndarray:
    """Grey uint8 (N, resolution, resolution): centre-cropped to a square, area-resized (PIL BOX)."""
    from PIL import Image

    out = np.empty((len(images), resolution, resolution), np.uint8)
    for i, image in enumerate(images):
        picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        picture = picture.convert("L")
        side = min(picture.size)
        left, top = (picture.width - side) // 2, (picture.height - side) // 2
        picture = picture.crop((left, top, left + side, top + side))
        out[i] = np.asarray(picture.resize((resolution, resolution), Image.BOX))
    return out


def _mnist(folder: str):
    from loops.images.mnist import load_mnist

    parts = []
    for split in ("train", "t10k"):
        try:
            parts.append(load_mnist(folder, split))
        except FileNotFoundError:
            continue
    if not parts:
        raise ValueError(f"no MNIST split with both images and labels (train-/t10k-images/labels-idx) in {folder}")
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return images, labels, [str(d) for d in range(int(labels.max()) + 1)]


def _class_folders(root: Path):
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise ValueError("not mnist:DIR, hf:NAME or a folder of class subfolders")
    names = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not names:
        raise ValueError(f"{root} has no class subfolders (expected one folder of images per class)")
    images, labels = [], []
    for label, name in enumerate(names):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as image:
                    images.append(image.convert("L"))
            except (OSError, UnidentifiedImageError) as e:
                raise ValueError(f"cannot read {path}: {e}") from None
            labels.append(label)
    if not images:
        raise ValueError(f"no images in the class subfolders of {root}")
    return images, np.array(labels, dtype=np.int64), names


def _hugging_face(name: str):
    import datasets

    path, _, split = name.partition(":")
    try:
        dataset = datasets.load_dataset(path, split=split or "train")
    except Exception as e:  # the Hub's errors have many types; all mean the same to the user
        raise ValueError(
            f"cannot load Hugging Face dataset {path!r} ({type(e).__name__}: {e}); offline, "
            "use a local copy (mnist:DIR or a folder of class subfolders)"
        ) from None
    image_column = next((c for c, f in dataset.features.items() if isinstance(f, datasets.Image)), None)
    label_column = next((c for c, f in dataset.features.items() if isinstance(f, datasets.ClassLabel)), None)
    if image_column is None or label_column is None:
        raise ValueError(
            f"dataset {path!r} needs an Image column and a ClassLabel column, has {list(dataset.features)}"
        )
    return (
        list(dataset[image_column]),
        np.array(dataset[label_column], dtype=np.int64),
        list(dataset.features[label_column].names),
    )
