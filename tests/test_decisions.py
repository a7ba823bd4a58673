"""Decisions say what was seen: a detector that found nothing says no_evidence, one that cannot
judge says not_applicable, a broken item is error everywhere, and only a probe trained by
`audit calibrate` on a real embedder may say real."""

from __future__ import annotations

import numpy as np
from PIL import Image

from audit import ScanConfig, scan
from audit.demo import REAL_PHOTOS, sample_photo
from audit.detectors.base import DECISIONS, EmbeddedItem
from audit.detectors.probe import LinearProbe, ProbeDetector
from tests.conftest import image_bytes, noise_image


def test_decisions_of_a_clean_photo_a_small_image_and_a_broken_file(tmp_path):
    Image.fromarray(sample_photo(REAL_PHOTOS[0])).save(tmp_path / "photo.png")  # a real photograph, no marks
    noise_image((64, 64)).save(tmp_path / "small.png")
    (tmp_path / "broken.png").write_bytes(b"broken")
    rows = {r["id"]: r for r in scan(str(tmp_path), workers=0).rows}
    photo, small, broken = rows["photo.png"], rows["small.png"], rows["broken.png"]
    assert (photo["metadata_decision"], photo["watermark_decision"], photo["decision"]) == (
        "no_evidence",
        "no_evidence",
        "no_evidence",
    )
    assert (small["watermark_decision"], small["decision"]) == ("not_applicable", "no_evidence")
    assert (broken["metadata_decision"], broken["watermark_decision"], broken["decision"]) == ("error",) * 3
    assert all(r[f"{d}_decision"] in DECISIONS for r in rows.values() for d in ("metadata", "watermark"))


def _probe(source: str, embedder: str) -> ProbeDetector:
    return ProbeDetector(LinearProbe(weight=-np.ones(4), bias=0.0, embedder=embedder, source=source))


def test_only_a_calibrated_probe_on_a_real_embedder_says_real():
    item = [EmbeddedItem(id="x", embedding=np.ones(4, np.float32) / 2)]  # probability far below 0.5
    assert _probe("audit calibrate", "ViT-B-32/openai").detect(item)[0].decision == "real"
    assert _probe("audit calibrate", "random").detect(item)[0].decision == "no_evidence"
    assert _probe("UnivFD fc_weights.pth", "ViT-L-14/openai").detect(item)[0].decision == "no_evidence"


def test_a_marked_image_is_synthetic_overall(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    (tmp_path / "a.png").write_bytes(image_bytes(noise_image(), "PNG", pnginfo=info))
    (row,) = scan(str(tmp_path), workers=0, config=ScanConfig(detectors=("metadata",))).rows
    assert (row["metadata_decision"], row["decision"]) == ("synthetic", "synthetic")
