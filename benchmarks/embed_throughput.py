"""Embedding throughput: the scan's embedding stage against bare `encode_image`, measured side by
side in one run, on the CPU and, when torch sees one, on CUDA.

    python benchmarks/embed_throughput.py [SOURCE] [--embedder SPEC] [--workers N] [--batch-size B]
                                          [--copies K] [--repeat R] [--no-scan]

Each round times, on the same images:
- bare `encode_image`: the model alone on ready input tensors (normalised, already on the device);
- the embedding stage: `EmbeddingStage.apply` on the batches exactly as the scan's decode workers
  hand them over (result rows + 224x224x3 uint8 pixels by seq), called per batch as the scan calls
  it: stacking, copy to the device, normalisation, inference, the vectors kept by content hash.
  These two are timed batch by batch in pairs, back to back (which goes first alternates), so a
  shared machine's changing load falls on both alike;
- the scan end to end (not with --no-scan; on the default device): `scan()` with N decode worker
  processes, embedding only, model load excluded, worker start-up included.
Rates are images embedded per second: each distinct image once, as the stage and the scan embed a
content hash once (the demo copies hold a few byte-identical files), and bare encode_image gets the
same images in the same batches. Ratios are to bare `encode_image` in the same round; medians of R
rounds (min-max). On CUDA the batches are run several times over, so that each timing covers at
least --cuda-images images.

The stage is what the scan adds to the model in its main process; the scan's own ceiling is set by
its decode workers and printed under the table. On the CPU they share the cores with the model:
with m CPU-seconds of inference per image (measured during bare encode_image) and w of worker
work (decode, model-ready pixels, pHash; measured here in one process), the scan cannot pass
m / (m + w) of bare encode_image, however well it overlaps. On CUDA the workers' decoding is it.

Defaults: the demo folder copied K times; `random:ViT-B-32` (the real ViT-B/32 architecture with
random weights: the same compute as the pretrained model, whose weights cannot be downloaded here).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from audit import ScanConfig, scan
from audit.demo import build_demo_copies
from audit.embedding.embedder import Embedder
from audit.embedding.stage import EmbeddingStage
from audit.engine.batch import init_worker, process_batch
from audit.engine.local import default_workers
from audit.sources import iter_records
from audit.threads import cores

Batch = tuple[list[dict], dict]  # what a decode worker hands the stage: rows, model-ready pixels by seq


def worker_batches(source: str, spec: str, batch_size: int) -> tuple[list[Batch], float]:
    """The scan's batches as its decode workers produce them, and the workers' CPU seconds (this process
    doing their work) per image embedded."""
    config = ScanConfig(detectors=(), embedder=spec, embed=True).resolved()
    init_worker(config, config.preprocess)
    records = list(enumerate(iter_records(source)))
    start = time.process_time()
    batches = [process_batch(records[i : i + batch_size]) for i in range(0, len(records), batch_size)]
    return batches, (time.process_time() - start) / sum(map(len, first_seen(batches)))


def first_seen(batches: list[Batch]) -> list[list[np.ndarray]]:
    """Per batch, the images the stage embeds: each content hash once, the first time it comes. Bare
    encode_image gets the same images in the same batches, so the rows compare the same work."""
    seen: set[str] = set()
    embedded = []
    for rows, prepared in batches:
        new = {
            row["sha256"]: prepared[row["seq"]] for row in rows if row["seq"] in prepared and row["sha256"] not in seen
        }
        seen.update(new)
        embedded.append(list(new.values()))
    return embedded


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def paired_round(
    embedder: Embedder, spec: str, inputs: list, batches: list[Batch], times: int, flip: bool
) -> tuple[float, float, float]:
    """Seconds of bare encode_image and of the stage over all batches (`times` over), timed batch by
    batch in pairs, back to back, which goes first alternating; and the CPU seconds of bare."""
    device = embedder.device
    stage = EmbeddingStage([], spec, "clip", None, device=device)  # nothing embedded yet; the model is shared
    bare = staged = cpu = 0.0
    for k in range(times):
        for i, ((rows, prepared), x) in enumerate(zip(batches, inputs)):
            rows = [dict(row, sha256=f"{row['sha256']}/{k}") for row in rows]  # new hashes: embedded again
            for which in (0, 1) if (i + flip) % 2 == 0 else (1, 0):
                synchronise(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                if which == 0 and x is not None:
                    with torch.inference_mode():
                        embedder.model.encode_image(x)
                elif which == 1:
                    stage.apply(rows, prepared)
                synchronise(device)
                if which == 0:
                    bare += time.perf_counter() - start
                    cpu += time.process_time() - start_cpu
                else:
                    staged += time.perf_counter() - start
    return bare, staged, cpu


def scan_rate(source: str, spec: str, workers: int, batch_size: int) -> float:
    """Images embedded per second by a scan that only embeds (no detectors, no cache), model load excluded."""
    config = ScanConfig(detectors=(), embedder=spec, embed=True)
    start = time.perf_counter()
    result = scan(source, config=config, workers=workers, batch_size=batch_size)
    elapsed = time.perf_counter() - start - result.stage.load_seconds
    return len({row["sha256"] for row in result.rows if row["status"] == "ok"}) / elapsed


def spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def measure(device: str, args, source: str, batches: list[Batch], n: int) -> dict[str, list[float]]:
    """Paired rounds on one device: rates of bare encode_image and the stage (and the scan), and the ratios."""
    embedder = Embedder(args.embedder, device=device)
    times = max(1, math.ceil(args.cuda_images / n)) if device.startswith("cuda") else 1
    with torch.inference_mode():
        inputs = [embedder.to_input(images) if images else None for images in first_seen(batches)]
    paired_round(embedder, args.embedder, inputs, batches, 1, False)  # warm-up
    runs: dict[str, list[float]] = {
        "bare": [],
        "bare cpu": [],
        "stage": [],
        "stage ratio": [],
        "scan": [],
        "scan ratio": [],
    }
    with_scan = args.scan and device == ("cuda" if torch.cuda.is_available() else "cpu")
    if with_scan:
        scan_rate(source, args.embedder, 0, args.batch_size)  # warm imports
    for round_ in range(args.repeat):
        bare, staged, cpu = paired_round(embedder, args.embedder, inputs, batches, times, bool(round_ % 2))
        runs["bare"].append(n * times / bare)
        runs["bare cpu"].append(cpu / (n * times))
        runs["stage"].append(n * times / staged)
        runs["stage ratio"].append(bare / staged)
        if with_scan:
            runs["scan"].append(scan_rate(source, args.embedder, args.workers, args.batch_size))
            runs["scan ratio"].append(runs["scan"][-1] / runs["bare"][-1])
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?")
    parser.add_argument("--embedder", default="random:ViT-B-32")
    parser.add_argument("--workers", type=int, default=default_workers(), help="the scan's decode workers")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5, help="paired rounds; medians are reported")
    parser.add_argument("--cuda-images", type=int, default=2000, help="images per timing on CUDA (batches rerun)")
    parser.add_argument(
        "--scan",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the scan end to end, decoding in worker processes",
    )
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or str(build_demo_copies(tmp, args.copies))
        batches, decode_cpu = worker_batches(source, args.embedder, args.batch_size)
        n = sum(map(len, first_seen(batches)))
        results = {device: measure(device, args, source, batches, n) for device in devices}
    table = Table(
        title=f"embedding throughput, {args.embedder}, {n} distinct images, batch {args.batch_size}, "
        f"{cores()} CPUs (medians of {args.repeat} paired rounds, min-max)"
    )
    for column in ("device", "what runs", "images/s", "ratio to bare"):
        table.add_column(column, justify="left" if column in ("device", "what runs") else "right")
    notes = []
    for device, runs in results.items():
        table.add_row(device, "bare encode_image", spread(runs["bare"]), "1.00")
        table.add_row(device, "embedding stage", spread(runs["stage"]), spread(runs["stage ratio"], 2))
        if runs["scan"]:
            table.add_row(
                device, f"scan, {args.workers} decode workers", spread(runs["scan"]), spread(runs["scan ratio"], 2)
            )
            model_cpu = statistics.median(runs["bare cpu"])
            if device == "cpu":  # the model's CPU time and the workers' share the cores
                ceiling = model_cpu / (model_cpu + decode_cpu)
                why = f"the model takes {1000 * model_cpu:.0f} ms of CPU per image, on the same cores"
            else:  # the workers' decoding feeds the GPU
                ceiling = min(1.0, min(args.workers, cores()) / decode_cpu / statistics.median(runs["bare"]))
                why = f"{min(args.workers, cores())} workers feed the GPU"
            notes.append(
                f"scan on {device}: its decode workers take {1000 * decode_cpu:.1f} ms of CPU per image "
                f"(decode, model-ready pixels, pHash) and {why}: it cannot pass about {ceiling:.2f}x "
                f"bare encode_image"
            )
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    main()
