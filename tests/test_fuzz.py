"""A seeded mutation fuzzer over small valid images (PNG with text chunks, JPEG with EXIF, GIF,
WebP, TIFF) through the whole per-item path of a scan worker: read, decode, the pixel detectors,
the row. Every input must give exactly one row, ok or error, and no exception may escape.
The default run is 5,000 cases (about a second); `-m slow` runs 200,000."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from audit import ScanConfig
from audit.engine import batch
from audit.sources.record import ImageRecord
from tests.conftest import noise_image

BATCH = 16


def _seeds() -> list[bytes]:
    im = noise_image((40, 30))
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Model: sd_xl_base_1.0")
    info.add_itxt("XML:com.adobe.xmp", '<x Iptc4xmpExt:DigitalSourceType="trainedAlgorithmicMedia"/>')
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x0131] = "editor"
    seeds = []
    for fmt, kwargs in (("PNG", {"pnginfo": info}), ("JPEG", {"exif": exif}), ("GIF", {}), ("WEBP", {}), ("TIFF", {})):
        buffer = io.BytesIO()
        im.save(buffer, format=fmt, **kwargs)
        seeds.append(buffer.getvalue())
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: flip bytes, overwrite with boundary values, cut, insert, repeat a span."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        i = rng.randrange(len(out)) if out else 0
        if kind == 0 and out:
            out[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[i : i + 4] = rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00"])
        elif kind == 2:
            del out[i:]
        elif kind == 3:
            out[i:i] = rng.randbytes(rng.randint(1, 32))
        else:
            j = min(len(out), i + rng.randint(1, 64))
            out[i:i] = out[i:j] * rng.randint(1, 8)
    return bytes(out)


def run_fuzz(cases: int, seed: int) -> dict[str, int]:
    """Mutated seeds through process_batch; returns how many rows were ok and error."""
    batch.init_worker(ScanConfig(detectors=("metadata", "watermark")).resolved(), None)
    rng, seeds = random.Random(seed), _seeds()
    statuses = {"ok": 0, "error": 0}
    for start in range(0, cases, BATCH):
        inputs = [mutate(rng.choice(seeds), rng) for _ in range(min(BATCH, cases - start))]
        records = [
            (start + i, ImageRecord(id=f"case{start + i}", uri="fuzz", data=data)) for i, data in enumerate(inputs)
        ]
        rows, _ = batch.process_batch(records)
        assert [r["id"] for r in rows] == [r.id for _, r in records]
        for row in rows:
            assert row["status"] in statuses and (row["status"] == "ok") == (row["error"] is None), row
            statuses[row["status"]] += 1
    return statuses


def test_mutated_images_always_give_one_row_each():
    statuses = run_fuzz(cases=5000, seed=0)
    assert statuses["ok"] > 100 and statuses["error"] > 100  # the mutations reach both outcomes


@pytest.mark.slow
def test_mutated_images_many_cases():
    run_fuzz(cases=200_000, seed=1)
