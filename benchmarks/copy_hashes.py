"""Which perceptual hash finds scraped copies: recall per transform and precision of pHash at several
Hamming thresholds, against a dHash/wHash/pHash vote and pHash of a centre crop, on the generated
copy set of benchmarks/copy_set.py (and, with --real-folder, on copies of your own photographs).

    python benchmarks/copy_hashes.py [--originals 500] [--distractors 300] [--set-dir DIR]
                                     [--real-folder FOLDER]

Each query is matched to its nearest original by the method's distance; it counts as a match when
that distance is within the threshold. Recall: copies matched to their own original, per transform
and over all copies. Precision: right matches / all matches (a distractor or a copy matched to the
wrong original is a wrong match). "distractor hits" counts distractors that matched anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copy_set import TRANSFORMS, build_copy_set, load_truth  # noqa: E402

from audit.bank.phash import hamming_matrix, to_uint64  # noqa: E402

console = Console(stderr=True)
CENTRE = 0.8  # the centre crop keeps this share of each side


def centre_crop(image: Image.Image) -> Image.Image:
    cut_x, cut_y = round(image.width * (1 - CENTRE) / 2), round(image.height * (1 - CENTRE) / 2)
    return image.crop((cut_x, cut_y, image.width - cut_x, image.height - cut_y))


HASHES = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "whash": imagehash.whash,
    "phash centre": lambda image: imagehash.phash(centre_crop(image)),
}


def hashes_of(paths: list[Path]) -> dict[str, np.ndarray]:
    """{hash name: uint64 array aligned with paths}."""
    found: dict[str, list[str]] = {name: [] for name in HASHES}
    for path in paths:
        image = Image.open(path).convert("RGB")
        for name, function in HASHES.items():
            found[name].append(str(function(image)))
    return {name: to_uint64(values) for name, values in found.items()}


def distances(queries: dict[str, np.ndarray], originals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{hash name: queries x originals Hamming distances}."""
    return {
        name: hamming_matrix([f"{int(h):016x}" for h in queries[name]], originals[name]).astype(np.int16)
        for name in HASHES
    }


def methods(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{method: queries x originals distance where a match needs distance <= 0}: each method's matches."""
    found = {f"phash <= {t}": d["phash"] - t for t in (4, 6, 8, 10, 12)}
    votes = sum((d[name] <= 8).astype(np.int16) for name in ("phash", "dhash", "whash"))
    found["vote 2 of 3 (p/d/w <= 8)"] = 2 - votes - d["phash"] / 1000  # ties broken by pHash distance
    found["phash centre <= 8"] = d["phash centre"] - 8
    found["phash <= 8 or centre <= 8"] = np.minimum(d["phash"], d["phash centre"]) - 8
    return found


def score(margin: np.ndarray, truth: list[tuple[int | None, str]]) -> dict:
    nearest = margin.argmin(axis=1)
    matched = margin[np.arange(len(margin)), nearest] <= 0
    right = np.array([o is not None and m and n == o for (o, _), m, n in zip(truth, matched, nearest)])
    per_transform = {}
    for transform in TRANSFORMS:
        rows = [i for i, (_, t) in enumerate(truth) if t == transform]
        per_transform[transform] = right[rows].mean() if rows else float("nan")
    copies = np.array([o is not None for o, _ in truth])
    distractor_hits = int((matched & ~copies).sum())
    return {
        "recall": right[copies].mean(),
        "precision": right.sum() / max(1, matched.sum()),
        "distractor hits": distractor_hits,
        **per_transform,
    }


def study(root: Path) -> tuple[list[str], dict[str, dict]]:
    truth_by_name = load_truth(root)
    originals = sorted((root / "originals").iterdir())
    index = {p.name: i for i, p in enumerate(originals)}
    queries = sorted(truth_by_name)
    truth = [(index[o] if o else None, t) for o, t in (truth_by_name[q] for q in queries)]
    console.print(f"hashing {len(originals)} originals and {len(queries)} queries ...")
    d = distances(hashes_of([root / "queries" / q for q in queries]), hashes_of(originals))
    return queries, {name: score(margin, truth) for name, margin in methods(d).items()}


def real_copy_set(folder: Path, out: Path) -> Path:
    """Every transform of every photograph in `folder`, the photographs as originals; no distractors."""
    import json

    (out / "originals").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    truth = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        image = Image.open(path).convert("RGB")
        image.save(out / "originals" / f"{path.stem}.png")
        for t, (name, transform) in enumerate(TRANSFORMS.items()):
            copy = transform(image, rng)
            query = out / "queries" / f"{path.stem}_{t}.{'jpg' if isinstance(copy, bytes) else 'png'}"
            query.write_bytes(copy) if isinstance(copy, bytes) else copy.save(query)
            truth[query.name] = [f"{path.stem}.png", name]
    (out / "truth.json").write_text(json.dumps({"queries": truth}))
    return out


def show(title: str, results: dict[str, dict]) -> None:
    table = Table(title=title)
    columns = ["recall", "precision", "distractor hits", *TRANSFORMS]
    table.add_column("method")
    for column in columns:
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(name, *(str(r[c]) if isinstance(r[c], int) else f"{r[c]:.3f}" for c in columns))
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--originals", type=int, default=500)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--set-dir", type=Path, default=Path(tempfile.gettempdir()) / "audit-copy-set")
    parser.add_argument("--real-folder", type=Path, default=None, help="Also measure on copies of these photographs.")
    args = parser.parse_args()
    root = build_copy_set(args.set_dir, args.originals, args.distractors)
    show(f"generated set: {args.originals} originals, copies and {args.distractors} distractors", study(root)[1])
    if args.real_folder:
        with tempfile.TemporaryDirectory() as tmp:
            show(
                f"copies of the photographs in {args.real_folder.name}",
                study(real_copy_set(args.real_folder, Path(tmp)))[1],
            )


if __name__ == "__main__":
    main()
