"""Peak memory of a scan of huge images: N PNGs of 99 MP each (one webdataset shard, one batch by
count), scanned by `audit scan` in a fresh process tree with the default detectors; prints the
wall time, the rows' statuses and the peak RSS of the whole tree (the command and its workers,
sampled from /proc). The pixels decoded at once are bounded by the scan's pixel budget, so the peak
should stay under 2 GB whatever N is. `--cap-gb` limits each process's address space (as a memory
cap would), to see what happens without the budget without filling the memory. Linux only.

    .venv/bin/python benchmarks/huge_images.py                  # 16 images, 2 workers
    .venv/bin/python benchmarks/huge_images.py --workers 0 --cap-gb 4
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rich.console import Console
from rich.table import Table
from scan_memory import run_sampled  # benchmarks/ is on the path when a benchmark runs

WIDTH, HEIGHT = 11_000, 9_000  # 99 MP, under the default --pixel-limit of 100 MP


def huge_pngs(n: int) -> list[bytes]:
    """N distinct 99 MP PNGs (one gradient picture, a different text chunk each: about 1.3 MB apiece)."""
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[:, :, 0] = (np.arange(WIDTH) % 256)[None, :]
    pixels[:, :, 1] = (np.arange(HEIGHT) % 256)[:, None]
    image = Image.fromarray(pixels)
    del pixels
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    plain = buffer.getvalue()
    out = []
    for i in range(n):  # the same IDAT under a different text chunk: re-encoding 16 times is slow
        info = PngInfo()
        info.add_text("n", str(i))
        head = io.BytesIO()
        Image.new("RGB", (1, 1)).save(head, "PNG", pnginfo=info)
        text = head.getvalue()
        chunk = text[33 : text.index(b"IDAT") - 4]  # the tEXt chunk between IHDR and IDAT
        out.append(plain[:33] + chunk + plain[33:])
    return out


def write_shard(path: Path, images: list[bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for i, data in enumerate(images):
            info = tarfile.TarInfo(f"{i:03d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def measure(shard: Path, out: Path, workers: int, cap_gb: float | None) -> tuple[float, float, dict]:
    """(seconds, peak tree RSS in MB, row statuses and reasons) of one `audit scan`."""
    command = [
        sys.executable,
        "-m",
        "audit.cli",
        "scan",
        str(shard),
        "--out",
        str(out),
        "--quiet",
        "--format",
        "json",
        "--workers",
        str(workers),
    ]

    def limit() -> None:
        if cap_gb:
            cap = int(cap_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    seconds, peak, code, err = run_sampled(command, preexec_fn=limit, every=0.1)
    if not (out / "results.parquet").is_file():
        return seconds, peak, {f"exit {code}": err[-300:]}
    rows = pq.read_table(out / "results.parquet", columns=["status", "error"]).to_pylist()
    statuses: dict = {}
    for row in rows:
        key = row["status"] + (f": {row['error'][:60]}" if row["error"] else "")
        statuses[key] = statuses.get(key, 0) + 1
    return seconds, peak, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap-gb", type=float, default=None, help="address-space limit per process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "huge.tar"
        write_shard(shard, huge_pngs(args.images))
        seconds, peak, statuses = measure(shard, Path(tmp) / "out", args.workers, args.cap_gb)
    cap = f", {args.cap_gb:g} GB cap per process" if args.cap_gb else ""
    table = Table(title=f"scan of {args.images} images of {WIDTH}x{HEIGHT} (99 MP), {args.workers} workers{cap}")
    for column in ("images", "seconds", "peak RSS of the tree (MB)", "rows"):
        table.add_column(column, justify="right" if column != "rows" else "left", overflow="fold")
    table.add_row(str(args.images), f"{seconds:.1f}", f"{peak:.0f}", json.dumps(statuses))
    Console().print(table)


if __name__ == "__main__":
    main()
