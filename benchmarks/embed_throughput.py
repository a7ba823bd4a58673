"""Embedding throughput: the scan's embedding stage (decode in workers, overlapped with
inference in the main process) against bare `encode_image` on the same images already decoded
and prepared, measured side by side in one run.

    python benchmarks/embed_throughput.py [SOURCE] [--embedder SPEC] [--workers N] [--batch-size B] [--repeat R]

The scan runs with N decode worker processes (default: as `audit scan`), so decoding overlaps
inference; medians of R runs (min-max). Defaults: the demo folder copied 2 times; `random:ViT-B-32` (the real ViT-B/32 architecture with
random weights: the same compute as the pretrained model, which cannot be downloaded here).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from audit import ScanConfig, scan
from audit.demo import build_demo_copies
from audit.embedding.embedder import Embedder, prepare_pixels
from audit.engine.local import default_workers
from audit.sources import iter_records


def bare_rate(source: str, embedder: Embedder, batch_size: int) -> tuple[int, float]:
    """Images/s of encode_image alone on pre-decoded, pre-prepared batches."""
    prepared = [prepare_pixels(r.decoded().rgb) for r in iter_records(source) if r.decoded() is not None]
    batches = [np.stack(prepared[i:i + batch_size]) for i in range(0, len(prepared), batch_size)]
    embedder.embed(batches[0])  # warm-up
    start = time.perf_counter()
    for batch in batches:
        embedder.embed(batch)
    return len(prepared), len(prepared) / (time.perf_counter() - start)


def pipeline_rate(source: str, spec: str, workers: int, batch_size: int) -> tuple[int, float]:
    """Images/s of a scan that only embeds (no detectors, no cache), model load excluded."""
    config = ScanConfig(detectors=(), embedder=spec, embed=True)
    start = time.perf_counter()
    result = scan(source, config=config, workers=workers, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    load = result.stage.load_seconds
    return result.summary["counts"]["ok"], result.summary["counts"]["ok"] / (elapsed - load)


def spread(rates: list[float]) -> str:
    return f"{statistics.median(rates):.1f} ({min(rates):.1f}-{max(rates):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?")
    parser.add_argument("--embedder", default="random:ViT-B-32")
    parser.add_argument("--workers", type=int, default=default_workers(), help="decode worker processes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians are reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or str(build_demo_copies(tmp, args.copies))
        embedder = Embedder(args.embedder)
        pipeline_rate(source, args.embedder, 0, args.batch_size)  # warm imports
        bare, pipeline = [], []
        for _ in range(args.repeat):  # paired: one of each per round
            n, rate = bare_rate(source, embedder, args.batch_size)
            bare.append(rate)
            pipeline.append(pipeline_rate(source, args.embedder, args.workers, args.batch_size)[1])
    table = Table(title=f"embedding throughput, {args.embedder} on {embedder.device} ({n} images, "
                        f"batch {args.batch_size}, {args.workers} decode workers, {os.cpu_count()} CPUs)")
    for column in ("stage", "images/s, median (min-max)", "ratio to bare"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    table.add_row("bare encode_image (pre-decoded)", spread(bare), "1.00")
    table.add_row(f"scan: decode in {args.workers} workers, overlapped with embedding", spread(pipeline),
                  f"{statistics.median(pipeline) / statistics.median(bare):.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
