"""A generated corpus of hostile inputs of many kinds, scanned as a folder, as webdataset shards
and as a parquet table with path cells, with 2 worker processes. Prints each kind with its row
status and reason, the slowest item (timed alone in this process), the scans' wall time and the
peak RSS of this process and of its workers. What the scan promises: docs/security.md.

    .venv/bin/python benchmarks/hostile_corpus.py [--workers 2]
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import struct
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rich.console import Console
from rich.table import Table

from audit import ScanConfig, scan
from audit.engine.batch import init_worker, process_batch
from audit.sources import iter_records


def encoded(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def noise(w=64, h=48, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def png_with_ihdr(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims another size (a bomb or a zero size by header)."""
    data = bytearray(encoded(noise(), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


def exif_type_confusion() -> bytes:
    ifd = b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHI", 256, 2, 4) + b"abc\x00"
    ifd += struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<H", 6) + b"\x00\x00" + b"\x00" * 4
    return encoded(Image.fromarray(np.zeros((300, 200, 3), np.uint8)), "JPEG", exif=b"Exif\x00\x00" + ifd)


def text_png(key: str, text: str) -> bytes:
    info = PngInfo()
    info.add_itxt(key, text)
    return encoded(noise(), "PNG", pnginfo=info)


def mutated(data: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for i in rng.integers(0, len(out), 8):
        out[i] ^= 0xFF
    return bytes(out)


def other_format(fmt: str, mode: str) -> bytes:
    return encoded(Image.new(mode, (8, 8)), fmt)


FILES = {  # kind -> bytes, written as a file in the folder, a tar member and a parquet path cell
    "empty file": lambda: b"",
    "truncated JPEG": lambda: encoded(noise(256, 256), "JPEG")[:600],
    "text named .png": lambda: b"hello\n" * 20,
    "garbage after PNG magic": lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(300),
    "pixel bomb by header (100k x 100k)": lambda: png_with_ihdr(100_000, 100_000),
    "zero width by header": lambda: png_with_ihdr(0, 48),
    "EXIF type confusion": exif_type_confusion,
    "DDS named .png": lambda: other_format("DDS", "RGBA"),
    "SPIDER named .png": lambda: other_format("SPIDER", "F"),
    "quadratic-XMP bait (900 KB)": lambda: text_png("XML:com.adobe.xmp", "DigitalSourceType " * 50_000),
    "1 MB parameters chunk": lambda: text_png("parameters", "Steps: 1, Sampler: x, " * 50_000),
    "progressive JPEG": lambda: encoded(noise(512, 512), "JPEG", progressive=True),
    "GIF with 200 frames": lambda: encoded(noise(32, 32).convert("P"), "GIF", save_all=True,
                                           append_images=[noise(32, 32, s).convert("P") for s in range(199)]),
    "16-bit PNG": lambda: encoded(Image.fromarray(np.full((20, 30), 40000, np.uint16)), "PNG"),
    "CMYK JPEG": lambda: encoded(noise().convert("CMYK"), "JPEG"),
    "mutated PNG": lambda: mutated(encoded(noise(), "PNG"), 1),
    "mutated JPEG": lambda: mutated(encoded(noise(), "JPEG"), 2),
    "mutated WebP": lambda: mutated(encoded(noise(), "WEBP"), 3),
    "mutated TIFF": lambda: mutated(encoded(noise(), "TIFF"), 4),
}


NAMES = {f"{i:02d}.png": kind for i, kind in enumerate(FILES)}


def kind_of(row_id: str, what: str) -> str:
    """The corpus kind behind a row id (file name, tar member or parquet row), else the id itself."""
    name = row_id.rsplit("/", 1)[-1]
    if what == "parquet" and name.isdigit():
        name = (list(NAMES) + ["cell ../outside/secret.png", "cell with an absolute path outside", "cell fifo.png",
                               "cell /dev/zero"])[int(name)]
    return NAMES.get(name, name)


def build(root: Path) -> dict[str, str]:
    """The corpus under root; returns source spec -> what it is."""
    folder = root / "folder"
    folder.mkdir()
    names = {kind: name for name, kind in NAMES.items()}
    for kind, make in FILES.items():
        (folder / names[kind]).write_bytes(make())
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(encoded(noise(), "PNG"))
    os.symlink(outside, folder / "link to a folder outside")
    os.symlink(outside / "secret.png", folder / "link to a file outside.png")
    os.symlink("missing.png", folder / "dangling link.png")
    os.symlink("loop.png", folder / "loop.png")
    os.mkfifo(folder / "fifo.png")
    members = [(names[k], make()) for k, make in FILES.items()]
    members += [("../escape.png", b"x"), ("/abs.png", b"x"), ("model.pkl", b"\x80\x04."), ("a.png", b"x"),
                ("a.png", b"y"), ("a.png#1", b"z"), (os.fsdecode(b"bad\xff.png"), encoded(noise(), "PNG"))]
    with tarfile.open(root / "shard.tar", "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    cells = [*names.values(), "../outside/secret.png", str(outside / "secret.png"), "fifo.png", "/dev/zero"]
    pq.write_table(pa.table({"path": cells}), folder / "table.parquet")
    return {str(folder): "folder", str(root / "shard.tar"): "tar shard", str(folder / "table.parquet"): "parquet"}


def slowest_alone(sources: dict[str, str]) -> tuple[float, str]:
    """Each item of every source through the worker's per-item path alone, in this process."""
    init_worker(ScanConfig().resolved(), None)
    slowest = (0.0, "")
    for spec in sources:
        for seq, record in enumerate(iter_records(spec)):
            started = time.perf_counter()
            process_batch([(seq, record)])
            slowest = max(slowest, (time.perf_counter() - started, f"{sources[spec]}: {record.id}"))
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        sources = build(Path(tmp))
        table = Table(title=f"hostile corpus: {len(FILES)} file kinds + links, FIFO, tar and parquet hostilities")
        for column in ("source", "item", "status", "reason"):
            table.add_column(column, overflow="fold")
        started, rows = time.perf_counter(), 0
        for spec, what in sources.items():
            for r in scan(spec, Path(tmp) / f"out-{what}", workers=args.workers).rows:
                table.add_row(what, kind_of(r["id"], what), r["status"], r["error"] or "")
                rows += 1
        wall = time.perf_counter() - started
        console.print(table)
        seconds, item = slowest_alone(sources)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    console.print(f"{rows} rows from 3 scans in {wall:.1f} s with {args.workers} workers; "
                  f"slowest item alone: {seconds:.2f} s ({item}); "
                  f"peak RSS: this process {own:.0f} MB, largest worker {workers:.0f} MB")


if __name__ == "__main__":
    main()
