"""Memory under the pixel limit: a batch holds at most the pixel limit decoded at once (a huge image
goes alone, one over the limit is an error row), the workers share one pixel budget, and decoding
converts a strip of rows at a time with the same pixels as converting the whole image."""

from __future__ import annotations

import io
from multiprocessing import get_context

import numpy as np
import pytest
from PIL import Image, ImageOps

from audit import ScanConfig
from audit.detectors.watermark import WatermarkDetector
from audit.engine.batch import init_worker, process_batch
from audit.engine.pixels import PixelBudget, scan_budget
from audit.sources import decode
from audit.sources.decode import decode_image
from audit.sources.record import ImageRecord
from tests.conftest import image_bytes, noise_image

LIMIT = 10_000  # pixels: two 64x64 images fit, a third does not


def decoded_pixels_alive(records: list[ImageRecord]) -> int:
    return sum(r._decoded.width * r._decoded.height for r in records if r._decoded is not None)


def test_a_batch_holds_at_most_the_pixel_limit_decoded(monkeypatch):
    """16 images of 64x64 in one batch under a limit of 10,000 pixels: the detectors never see more
    than 10,000 decoded pixels alive in the batch; a 95x100 image goes alone; a larger one is an error."""
    sizes = [(64, 64)] * 5 + [(95, 100)] + [(64, 64)] * 9 + [(101, 100)]
    records = [
        ImageRecord(id=f"{i}.png", uri=f"{i}.png", pixel_limit=LIMIT, data=image_bytes(noise_image(size, seed=i)))
        for i, size in enumerate(sizes)
    ]
    seen = []
    detect = WatermarkDetector.detect

    def watched(self, group):
        seen.append((len(group), decoded_pixels_alive(records)))
        return detect(self, group)

    monkeypatch.setattr(WatermarkDetector, "detect", watched)
    init_worker(ScanConfig(pixel_limit=LIMIT).resolved(), None)
    rows, _ = process_batch(list(enumerate(records)))

    assert [r["seq"] for r in rows] == list(range(16))  # one row each, in order
    assert max(alive for _, alive in seen) <= LIMIT, seen
    assert (1, 9500) in seen  # the huge image alone
    assert [r["status"] for r in rows].count("ok") == 15
    assert rows[15]["status"] == "error" and "exceeds the limit" in rows[15]["error"]
    assert decoded_pixels_alive(records) == 0  # released once their rows are built


def test_the_budget_lets_a_worker_holding_pixels_never_wait_and_starves_no_large_image():
    budget = PixelBudget(100)
    budget.take(60)
    assert not budget.try_take(50)  # a holder is told to finish what it holds first
    assert budget.try_take(40)
    budget.give(100)
    budget.take(250)  # larger than the budget, but nobody holds anything: it runs alone
    assert not budget.try_take(1)
    budget.give(250)


def test_a_waiting_claim_keeps_small_images_from_starving_a_large_one():
    """The first worker to wait claims its pixels; others then take only what leaves room for it."""
    ctx = get_context("spawn")
    budget = PixelBudget.shared(ctx, 100)
    budget.take(30)  # held by this process
    budget._state[1], budget._state[2] = 90, -1  # as a waiting worker (another pid) leaves it
    assert not budget.try_take(10)  # 30 + 10 + 90 > 100
    budget.give(30)
    assert not budget.try_take(20)  # only the claimant may take now
    assert scan_budget(100_000_000, 2) == 100_000_000 and scan_budget(1_000, 8) == 8 * 25_000_000


def reference_rgb(im: Image.Image) -> np.ndarray:
    """The whole image converted at once, as decoding did before it went strip by strip."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        scale = 257.0 if im.mode.startswith("I;16") else max(a.max(), 1.0) / 255.0
        gray = np.clip(a / scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode != "RGB":
        im = im.convert("RGBA" if "A" in im.mode else "RGB").convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def modes() -> dict[str, bytes]:
    rgb = noise_image((37, 29), seed=3)
    rng = np.random.default_rng(4)
    palette = rgb.convert("P")
    palette.info["transparency"] = 5
    out = {mode: image_bytes(rgb.convert(mode)) for mode in ("RGB", "RGBA", "LA", "L", "1")}
    out["P"] = image_bytes(palette)
    out["CMYK"] = image_bytes(rgb.convert("CMYK"), "JPEG")
    out["I;16"] = image_bytes(Image.fromarray(rng.integers(0, 65535, (29, 37), dtype=np.uint16)))
    out["I"] = image_bytes(Image.fromarray(rng.integers(-5, 70000, (29, 37), dtype=np.int32)), "TIFF")
    out["F"] = image_bytes(Image.fromarray(rng.random((29, 37), dtype=np.float32) * 900), "TIFF")
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", exif=exif.tobytes())
        out[f"JPEG orientation {orientation}"] = buffer.getvalue()
    return out


@pytest.mark.parametrize("name", list(modes()))
def test_strip_by_strip_decoding_gives_the_whole_image_conversion(name, monkeypatch):
    monkeypatch.setattr(decode, "STRIP_BYTES", 8 * 37 * 3)  # strips of 3 rows
    data = modes()[name]
    decoded = decode_image(data)
    assert decoded.rgb.flags.c_contiguous and decoded.rgb.dtype == np.uint8
    assert np.array_equal(decoded.rgb, reference_rgb(Image.open(io.BytesIO(data))))
