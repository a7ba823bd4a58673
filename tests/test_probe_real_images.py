"""The CLIP-feature classifier on real images: `audit calibrate` with the real CLIP encoder separates
AI images of many generator families from real photographs it never trained on, after both classes
are normalised alike (size, crop and JPEG re-encoding, so file statistics cannot do it), and the probe
it writes scores a scan of unseen images the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from audit import ScanConfig, scan
from audit.calibrate import calibrate
from tests.conftest import shared_data

PER_CLASS = 40
SIZE = 256


def normalised_copies(files: list[Path], folder: Path) -> None:
    """Shorter side to SIZE, centre crop, JPEG q90 without metadata: the same for both classes."""
    folder.mkdir(parents=True)
    for path in files:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        scale = SIZE / min(rgb.size)
        rgb = rgb.resize((max(SIZE, round(rgb.width * scale)), max(SIZE, round(rgb.height * scale))), Image.BICUBIC)
        left, top = (rgb.width - SIZE) // 2, (rgb.height - SIZE) // 2
        rgb.crop((left, top, left + SIZE, top + SIZE)).save(folder / f"{path.stem}.jpg", quality=90)


def spread(files: list[Path], count: int, offset: int = 0) -> list[Path]:
    """`count` files spread evenly over the sorted list (so over its sources and families)."""
    step = len(files) / count
    return [files[int(i * step) + offset] for i in range(count)]


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def test_the_probe_separates_real_ai_images_from_photographs(tmp_path, clip_encoder):
    bench = shared_data("real-bench")
    ai, real = sorted((bench / "ai").iterdir()), sorted((bench / "real").iterdir())
    normalised_copies(spread(ai, PER_CLASS), tmp_path / "cal" / "synthetic")
    normalised_copies(spread(real, PER_CLASS), tmp_path / "cal" / "real")
    result = calibrate(
        str(tmp_path / "cal" / "real"),
        str(tmp_path / "cal" / "synthetic"),
        tmp_path / "calibration",
        config=ScanConfig(embedder=clip_encoder),
        heldout=0.5,
        workers=0,
    )
    assert result["embedder"] == clip_encoder
    assert result["probe"]["metrics"]["heldout_auc"] >= 0.85, result["probe"]["metrics"]

    unseen = tmp_path / "unseen"  # other images of the same set, never in calibration
    normalised_copies(spread(ai, 15, offset=1), unseen / "ai")
    normalised_copies(spread(real, 15, offset=1), unseen / "real")
    rows = scan(
        str(unseen), config=ScanConfig(detectors=("probe",), probe=str(tmp_path / "calibration" / "probe")), workers=0
    ).rows
    labels = np.array([row["id"].startswith("ai/") for row in rows])
    assert auc(labels, np.array([row["probe_score"] for row in rows])) >= 0.85
