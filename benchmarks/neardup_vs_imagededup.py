"""Copy detection without a model, side by side in one run: this project's pHash bank
(`audit bank add --embedder none` + `audit scan --detectors neardup`) against imagededup's PHash
(`encode_images` + `find_duplicates`), on the generated set of benchmarks/copy_set.py.

    python benchmarks/neardup_vs_imagededup.py [--originals 500] [--distractors 300] [--repeats 3]
                                               [--workers N] [--set-dir DIR]

imagededup is a benchmark-only dependency (`pip install imagededup`); without it the project's
row is measured alone and the script says so. Both tools use all CPUs (the project's default
workers, imagededup's default encoding and search processes) and start from files on disk.
Wall time covers everything each tool does: the project builds a bank of the originals and
scans the queries against it (writing its usual outputs); imagededup hashes originals and
queries and searches all pairs. Two wall times, medians over --repeats runs each:
"fresh s" runs each tool as its users do, in new processes (`audit bank add` then `audit scan`;
one `python` process calling imagededup), imports included; "in-process s" calls both from
this process after their imports, so it leaves out start-up.

Accuracy, per query: the tool's match is the original it names (the project: the bank entry of
its neardup evidence; imagededup: the nearest original in its duplicate list). Recall: copies
matched to their own original / copies; precision: right matches / all matches (a distractor or
a copy matched to another original is a wrong match). Each tool is measured at its default
threshold, and imagededup also at the project's (the same 64-bit DCT pHash, so equal thresholds
compare the pipelines).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copy_set import build_copy_set, load_truth  # noqa: E402

from audit.bank.phash import DEFAULT_PHASH_DISTANCE  # noqa: E402

IMAGEDEDUP_DEFAULT = 10  # imagededup's max_distance_threshold default
console = Console(stderr=True)


def run_project(root: Path, work: Path, workers: int) -> tuple[float, dict[str, str | None]]:
    """(wall seconds, {query: matched original or None}) for bank add + scan with --embedder none, in-process."""
    from audit import ScanConfig, scan
    from audit.bank_add import add_to_bank

    bank = work / "bank"
    start = time.perf_counter()
    add_to_bank(str(root / "originals"), bank, embedder="none", workers=workers)
    result = scan(
        str(root / "queries"), work / "out", config=ScanConfig(detectors=("neardup",), bank=str(bank)), workers=workers
    )
    seconds = time.perf_counter() - start
    return seconds, {r["id"]: _matched_original(r) for r in result.rows}


def run_project_cli(root: Path, work: Path, workers: int) -> tuple[float, dict[str, str | None]]:
    """The same with the `audit` command, in new processes."""
    import pyarrow.parquet as pq

    audit = [sys.executable, "-m", "audit.cli"]
    bank, out = work / "bank", work / "out"
    start = time.perf_counter()
    _run(
        [
            *audit,
            "bank",
            "add",
            str(root / "originals"),
            "--bank",
            str(bank),
            "--embedder",
            "none",
            "--workers",
            str(workers),
            "--quiet",
        ]
    )
    _run(
        [
            *audit,
            "scan",
            str(root / "queries"),
            "--bank",
            str(bank),
            "--detectors",
            "neardup",
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--quiet",
            "--format",
            "json",
        ]
    )
    seconds = time.perf_counter() - start
    rows = pq.read_table(out / "results.parquet", columns=["id", "neardup_decision", "neardup_evidence"]).to_pylist()
    return seconds, {r["id"]: _matched_original(r) for r in rows}


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")


def _matched_original(row: dict) -> str | None:
    """The bank entry (original file name) a synthetic neardup decision names, else None."""
    if row["neardup_decision"] != "synthetic":
        return None
    evidence = row["neardup_evidence"]  # "phash match d=3 to orig_00042.png (label originals)"
    return evidence.split(" to ", 1)[1].split(" (label ")[0]


def run_imagededup(root: Path, threshold: int, workers: int) -> tuple[float, dict[str, str | None]]:
    """(wall seconds, {query: nearest original in its duplicate list or None}), in-process."""
    from imagededup.methods import PHash

    start = time.perf_counter()
    hasher = PHash(verbose=False)
    encodings = {
        **hasher.encode_images(str(root / "originals"), num_enc_workers=workers),
        **hasher.encode_images(str(root / "queries"), num_enc_workers=workers),
    }
    found = hasher.find_duplicates(
        encoding_map=encodings, max_distance_threshold=threshold, scores=True, num_dist_workers=workers
    )
    seconds = time.perf_counter() - start
    matches = {}
    for query in (root / "queries").iterdir():
        originals = [(d, name) for name, d in found.get(query.name, []) if name.startswith("orig_")]
        matches[query.name] = min(originals)[1] if originals else None
    return seconds, matches


def run_imagededup_fresh(root: Path, threshold: int, workers: int) -> tuple[float, dict[str, str | None]]:
    """The same in a new `python` process (importing imagededup included)."""
    with tempfile.TemporaryDirectory() as work:
        answer = Path(work) / "matches.json"
        start = time.perf_counter()
        _run([sys.executable, __file__, "--imagededup-only", str(root), str(threshold), str(workers), str(answer)])
        seconds = time.perf_counter() - start
        return seconds, json.loads(answer.read_text())


def accuracy(matches: dict[str, str | None], truth: dict[str, tuple[str | None, str]]) -> tuple[float, float]:
    copies = [q for q, (o, _) in truth.items() if o is not None]
    right = sum(1 for q in copies if matches.get(q) == truth[q][0])
    made = sum(1 for q in truth if matches.get(q) is not None)
    return right / len(copies), (right / made if made else float("nan"))


def measure(tools: dict[str, tuple], repeats: int, truth) -> list[dict]:
    """Median wall times of both ways of running each tool, the tools taking turns in each repeat (so
    a busy machine slows them alike); accuracy of the fresh runs (both ways give the same matches)."""
    times = {name: {"fresh": [], "in_process": []} for name in tools}
    scores = {}
    for i in range(repeats):
        for name, (fresh, in_process) in tools.items():
            for way, runner in (("fresh", fresh), ("in_process", in_process)):
                seconds, matches = runner()
                times[name][way].append(seconds)
                console.print(f"{name}: {way} run {i + 1}/{repeats} took {seconds:.1f} s")
                if way == "fresh":
                    scores[name] = accuracy(matches, truth)
    return [
        {
            "tool": name,
            **{way: statistics.median(t) for way, t in times[name].items()},
            "recall": scores[name][0],
            "precision": scores[name][1],
        }
        for name in tools
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--originals", type=int, default=500)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="Processes for both tools (default: all CPUs).")
    parser.add_argument("--set-dir", type=Path, default=Path(tempfile.gettempdir()) / "audit-copy-set")
    parser.add_argument(
        "--imagededup-only", nargs=4, metavar=("ROOT", "THRESHOLD", "WORKERS", "OUT"), help=argparse.SUPPRESS
    )  # the fresh imagededup process
    args = parser.parse_args()
    if args.imagededup_only:
        root, threshold, workers, answer = args.imagededup_only
        matches = run_imagededup(Path(root), int(threshold), int(workers))[1]
        Path(answer).write_text(json.dumps(matches))
        return
    logging.getLogger("imagededup").setLevel(logging.WARNING)
    workers = args.workers or os.cpu_count() or 1
    console.print(f"building (or reusing) the copy set in {args.set_dir} ...")
    root = build_copy_set(args.set_dir, args.originals, args.distractors)
    truth = load_truth(root)
    tools = {
        f"autophagy-audit pHash bank (d <= {DEFAULT_PHASH_DISTANCE})": (
            lambda: _in_temporary(run_project_cli, root, workers),
            lambda: _in_temporary(run_project, root, workers),
        )
    }
    try:
        import imagededup  # noqa: F401
    except ImportError:
        console.print("imagededup is not installed (pip install imagededup): measuring the project alone")
    else:
        for t in (IMAGEDEDUP_DEFAULT, DEFAULT_PHASH_DISTANCE):
            tools[f"imagededup PHash (d <= {t})"] = (
                lambda t=t: run_imagededup_fresh(root, t, workers),
                lambda t=t: run_imagededup(root, t, workers),
            )
    rows = measure(tools, args.repeats, truth)
    show(rows, len(truth), sum(1 for o, _ in truth.values() if o is None), args, workers)


def _in_temporary(runner, root: Path, workers: int):
    with tempfile.TemporaryDirectory() as work:
        return runner(root, Path(work), workers)


def show(rows: list[dict], queries: int, distractors: int, args, workers: int) -> None:
    table = Table(
        title=f"{args.originals} originals, {queries - distractors} copies, {distractors} distractors; "
        f"{workers} processes; wall times are medians of {args.repeats}"
    )
    for column in ("tool", "fresh s", "in-process s", "recall", "precision"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for r in rows:
        table.add_row(
            r["tool"], f"{r['fresh']:.1f}", f"{r['in_process']:.1f}", f"{r['recall']:.3f}", f"{r['precision']:.3f}"
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
