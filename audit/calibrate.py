"""`audit calibrate`: measure every detector's operating point on labelled data.

Both labelled sources are scanned (embeddings cached under `out/embeddings`), the images are
split by content hash into train and held-out parts with a seed, the probe is trained on the
train part (or a given probe is used as is), and on the held-out part the true- and
false-positive rates of each detector and of the scan's combined rule (any detector says
synthetic) are measured with Clopper-Pearson intervals and their counts. For the corrected
estimate (`audit/estimate.py`) it also measures hard evidence's rates (`hard_evidence`), the
combined rule's rates on held-out images without hard evidence (`combined_rest`) and the synthetic
share the probe was trained at (`probe.train_prior`), the probe's mean probability and its variance
per class on held-out images without hard evidence (`soft_rest`, for PACC), the held-out probabilities
themselves per class, without and with hard evidence (`score_distributions`, for the scan's shift test),
and how the rates vary when a generator or source is unseen (`shift`): each synthetic image's generator
is its sub-folder (the first part of its id: folders and tar members), else the generator its metadata
or watermark names; each image's source is its top-level folder or shard, real images included. The
probe is retrained without each generator and each source in turn, and the combined rule's TPR (or FPR,
for a real source) and the probe's mean probability are measured on that fold's held-out images without
hard evidence; `shift.spread` holds how far each moved from the pooled value (folds with fewer than
MIN_FOLD_IMAGES such images are skipped, and say so). Writes
`calibration.json`, `probe/` and `calibration_items.parquet` (per image: label, held-out, hard
evidence, combined flag, probe score, generator); `audit scan --calibration DIR` uses the first two.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically
from audit.detectors.base import SYNTHETIC
from audit.engine.config import CALIBRATION_FILE, ScanConfig
from audit.engine.local import ScanResult, scan
from audit.engine.user_files import check_probe
from audit.estimate import Soft, clopper_pearson
from audit.report.groups import GROUPERS
from audit.report.strict_json import strict_json
from audit.shift import score_distribution

MIN_PER_CLASS = 2
MIN_FOLD_IMAGES = 20  # held-out images without hard evidence a generator or source needs for its own rates
ITEMS_FILE = "calibration_items.parquet"


def calibrate(
    real: str,
    synthetic: str,
    out: str | Path,
    *,
    config: ScanConfig | None = None,
    probe: str | None = None,
    heldout: float = 0.3,
    seed: int = 0,
    workers: int | None = None,
    batch_size: int = 16,
    progress=None,
) -> dict:
    """Calibrate on `real` and `synthetic` sources; returns what calibration.json holds."""
    if not 0 < heldout < 1:
        raise ValueError(f"--heldout must be between 0 and 1, not {heldout}")
    out = Path(out)
    base = replace(config or ScanConfig(), embed=True, probe=None, calibration=None)
    if probe:
        sidecar = check_probe(probe)
        base = replace(
            base, embedder=base.embedder or sidecar["embedder"], preprocess=base.preprocess or sidecar["preprocess"]
        )
    scans = {
        label: scan(
            source,
            out / f"scan-{name}",
            config=base,
            workers=workers,
            batch_size=batch_size,
            progress=progress,
            embedding_cache=out / "embeddings",
            overwrite=True,
        )
        for label, name, source in ((0, "real", real), (1, "synthetic", synthetic))
    }
    _check_usable(scans, {0: real, 1: synthetic})
    table = _labelled_table(scans)
    is_heldout = _split(table["sha256"], table["label"], heldout, seed)
    probe_result = _probe(table, is_heldout, scans[1], probe, seed, out)
    decisions = _decisions(table, probe_result)
    detectors = _operating_points(decisions, table["label"], is_heldout)
    calibration = {
        "real": real,
        "synthetic": synthetic,
        "seed": seed,
        "heldout_fraction": heldout,
        "embedder": scans[1].summary["config"]["embedder"],
        "preprocess": scans[1].summary["config"]["preprocess"],
        "counts": _counts(table, is_heldout, scans),
        "detectors": detectors,
        "combined": detectors.pop("combined"),
        **_estimation_points(table, is_heldout, decisions["combined"]),
        **_soft_rest(table, is_heldout, probe_result["scores"]),
        **_score_distributions(table, is_heldout, probe_result["scores"]),
        "shift": generator_shift(table, is_heldout, decisions, probe_result),
        "probe": probe_result["info"],
        "notes": scans[1].summary["notes"],
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / CALIBRATION_FILE, lambda p: p.write_text(strict_json(calibration)))
    _write_items(out / ITEMS_FILE, table, is_heldout, decisions["combined"], probe_result["scores"], table["group"])
    return calibration


def _check_usable(scans: dict[int, ScanResult], sources: dict[int, str]) -> None:
    """Each labelled source must give at least MIN_PER_CLASS readable images (ValueError: exit 2)."""
    for label, result in scans.items():
        counts = result.summary["counts"]
        if counts["ok"] < MIN_PER_CLASS:
            reasons = ", ".join(f"{n} {r}" for r, n in result.summary["errors"]["by_reason"].items()) or "none"
            raise ValueError(
                f"the {('real', 'synthetic')[label]} source {sources[label]} gave {counts['ok']} readable "
                f"images; at least {MIN_PER_CLASS} are needed (errors: {reasons})"
            )


def _labelled_table(scans: dict[int, ScanResult]) -> dict:
    """Columns over the usable images of both scans: label, sha256, decisions, hard evidence, raw embedding."""
    rows, labels, vectors = [], [], []
    for label, result in scans.items():
        for row in result.rows:
            if row["status"] != "ok":
                continue
            rows.append(row)
            labels.append(label)
            vectors.append(result.stage.vector(row["sha256"]) if result.stage and result.stage.active else None)
    detectors = scans[1].summary["detectors"]
    return {
        "label": np.array(labels, dtype=int),
        "sha256": [r["sha256"] for r in rows],
        "decisions": {d: np.array([r[f"{d}_decision"] == SYNTHETIC for r in rows]) for d in detectors},
        "hard": np.array([bool(r["hard_evidence"]) for r in rows], dtype=bool),
        "group": [generator_group(r) for r in rows],
        "source": [GROUPERS["shard"](r) for r in rows],
        "vectors": vectors,
    }


def generator_group(row: dict) -> str | None:
    """The generator a labelled image comes from: its sub-folder (the first part of its id, for folders and
    tar members), else the generator its metadata or watermark names, else None."""
    parts = str(row["id"]).split("/")
    return parts[0] if len(parts) > 1 and parts[0] else row.get("generator") or None


def _split(keys: list[str], labels: np.ndarray, heldout: float, seed: int) -> np.ndarray:
    """Held-out mask, stratified by label; identical images (same hash) always fall on the same side."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(keys), dtype=bool)
    for label in (0, 1):
        unique = sorted({k for k, lab in zip(keys, labels) if lab == label})
        chosen = set(rng.permutation(unique)[: int(round(heldout * len(unique)))].tolist()) if unique else set()
        mask |= np.array([lab == label and k in chosen for k, lab in zip(keys, labels)], dtype=bool)
    return mask


def _probe(
    table: dict, is_heldout: np.ndarray, synthetic_scan: ScanResult, given: str | None, seed: int, out: Path
) -> dict:
    """Train (or load) the probe and score the held-out part; `info` says what happened."""
    from audit.detectors.probe import LinearProbe, train_probe

    if any(v is None for v in table["vectors"]) or not table["vectors"]:
        why = synthetic_scan.summary["skipped_detectors"].get("embeddings", "no embeddings")
        return {"info": {"skipped": why}, "decisions": None, "scores": None, "retrain": None}
    x = np.stack(table["vectors"])
    y = table["label"]
    config = synthetic_scan.summary["config"]
    prior = {}  # unknown for a given probe
    if given:
        probe = LinearProbe.load(given)
    else:
        train = ~is_heldout
        if min(np.bincount(y[train], minlength=2)) < MIN_PER_CLASS:
            return {
                "info": {"skipped": f"fewer than {MIN_PER_CLASS} training images of a class"},
                "decisions": None,
                "scores": None,
                "retrain": None,
            }
        probe = train_probe(x[train], y[train], config["embedder"], config["preprocess"], seed=seed)
        prior = {"train_prior": float(y[train].mean())}  # the EM cross-check's starting point
    scores = probe.probabilities(x)
    probe.metrics.update(_heldout_metrics(scores[is_heldout], y[is_heldout]))
    probe.save(out / "probe")
    info = {"folder": "probe", "source": probe.source, "threshold": probe.threshold, "metrics": probe.metrics, **prior}

    def retrain(mask: np.ndarray):
        """Probabilities and decisions on all images of a probe trained like this one on `mask` only."""
        if given or min(np.bincount(y[mask], minlength=2)) < MIN_PER_CLASS:
            return None
        other = train_probe(x[mask], y[mask], config["embedder"], config["preprocess"], seed=seed)
        other_scores = other.probabilities(x)
        return other_scores, other_scores >= other.threshold

    return {"info": info, "decisions": scores >= probe.threshold, "scores": scores, "retrain": retrain}


def _heldout_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    both = len(set(labels.tolist())) == 2
    return {
        "heldout_count": int(len(labels)),
        "heldout_auc": float(roc_auc_score(labels, scores)) if both else None,
        "heldout_accuracy": float(((scores >= 0.5) == labels).mean()) if len(labels) else None,
    }


def _decisions(table: dict, probe_result: dict) -> dict[str, np.ndarray]:
    """Each detector's synthetic decisions, the probe's included, and the combined rule's."""
    decisions = dict(table["decisions"])
    if probe_result["decisions"] is not None:
        decisions["probe"] = probe_result["decisions"]
    decisions["combined"] = (
        np.any(np.stack(list(decisions.values())), axis=0) if decisions else np.zeros(len(table["label"]), dtype=bool)
    )
    return decisions


def _operating_points(decisions: dict[str, np.ndarray], labels: np.ndarray, is_heldout: np.ndarray) -> dict:
    return {name: rates(flagged[is_heldout], labels[is_heldout]) for name, flagged in decisions.items()}


def _estimation_points(table: dict, is_heldout: np.ndarray, combined: np.ndarray) -> dict:
    """Held-out rates of hard evidence, and of the combined rule on images without hard evidence."""
    y, hard = table["label"], table["hard"]
    rest = is_heldout & ~hard
    return {"hard_evidence": rates(hard[is_heldout], y[is_heldout]), "combined_rest": rates(combined[rest], y[rest])}


def _soft_rest(table: dict, is_heldout: np.ndarray, scores: np.ndarray | None) -> dict:
    """The probe's probabilities on held-out images without hard evidence, per class: n, mean, variance."""
    if scores is None:
        return {}
    rest, y = is_heldout & ~table["hard"], table["label"]
    return {
        "soft_rest": {
            name: Soft.of(scores[rest & (y == label)]).to_json() for name, label in (("synthetic", 1), ("real", 0))
        }
    }


def _score_distributions(table: dict, is_heldout: np.ndarray, scores: np.ndarray | None) -> dict:
    """The probe's held-out probabilities per stratum (without / with hard evidence) and class, for the scan's
    shift test (audit/shift.py)."""
    if scores is None:
        return {}
    y = table["label"]
    strata = {"rest": is_heldout & ~table["hard"], "hard": is_heldout & table["hard"]}
    return {
        "score_distributions": {
            name: {
                label: score_distribution(scores[mask & (y == value)])
                for label, value in (("synthetic", 1), ("real", 0))
            }
            for name, mask in strata.items()
        }
    }


def generator_shift(table: dict, is_heldout: np.ndarray, decisions: dict[str, np.ndarray], probe_result: dict) -> dict:
    """How the rates move when a generator or source is unseen. Folds: each generator of the synthetic images
    (`generators`) and each source group of either class (`sources`: top-level folder or shard, unless it holds
    the same images as a generator). Per fold, on its held-out images without hard evidence: the combined
    rule's TPR (synthetic) or FPR (real) and the probe's mean probability, as calibrated and with the probe
    retrained without the fold (leave one out). `spread`: per measure the moves from the pooled calibrated
    value (min, max, sd, folds); `tpr_drop`, `score_drop`: the largest drops (synthetic)."""
    y = table["label"]
    rest = is_heldout & ~table["hard"]
    scores = probe_result["scores"]
    others = [d for name, d in decisions.items() if name not in ("probe", "combined")]
    other_flags = np.any(np.stack(others), axis=0) if others else np.zeros(len(y), dtype=bool)
    calibrated = {
        label: {
            "rate": float(decisions["combined"][rest & (y == label)].mean()) if (rest & (y == label)).any() else None,
            "score": None
            if scores is None or not (rest & (y == label)).any()
            else float(scores[rest & (y == label)].mean()),
        }
        for label in (0, 1)
    }
    result = {
        "groups_from": "generators: sub-folder names, else the generator named by metadata or watermark "
        "evidence; sources: the top-level folder or shard of either class",
        "generators": {},
        "sources": {},
        "tpr_drop": None,
        "score_drop": None,
        "calibrated_tpr": calibrated[1]["rate"],
        "calibrated_mean_score": calibrated[1]["score"],
        "calibrated_fpr": calibrated[0]["rate"],
        "calibrated_mean_score_real": calibrated[0]["score"],
    }
    folds, skipped = _folds(table, y)
    if skipped:
        result["skipped"] = "; ".join(skipped)
    moves = {key: [] for key in ("tpr", "fpr", "mean_score_synthetic", "mean_score_real")}
    for kind, name, label, member in folds:
        entry = _fold(member, label, rest, is_heldout, decisions["combined"], other_flags, scores, probe_result)
        result[kind][name] = entry
        rate, measure = ("tpr", "mean_score_synthetic") if label else ("fpr", "mean_score_real")
        if "skipped" in entry:
            continue
        moves[rate].append(entry.get(f"{rate}_unseen", entry[rate]) - calibrated[label]["rate"])
        if scores is not None:
            moves[measure].append(entry.get("mean_score_unseen", entry["mean_score"]) - calibrated[label]["score"])
    spread = {
        key: None
        if not values
        else {"min": float(min(values)), "max": float(max(values)), "sd": float(np.std(values)), "folds": len(values)}
        for key, values in moves.items()
    }
    retrained = any(
        "mean_score_unseen" in e or f"{r}_unseen" in e
        for group in ("generators", "sources")
        for e in result[group].values()
        for r in ("tpr", "fpr")
    )
    result.update(
        {
            "spread": spread,
            "tpr_drop": None if spread["tpr"] is None else -spread["tpr"]["min"],
            "score_drop": None if spread["mean_score_synthetic"] is None else -spread["mean_score_synthetic"]["min"],
            "measured": (
                None
                if not any(spread.values())
                else "leave one generator or source out: the probe retrained without it"
                if retrained
                else "per generator or source as calibrated (the probe was given, not "
                "trained, so it cannot be retrained): the spread across them"
            ),
        }
    )
    return result


def _folds(table: dict, y: np.ndarray) -> tuple[list[tuple[str, str, int, np.ndarray]], list[str]]:
    """(kind, name, label, member mask) per leave-one-out fold, and why a kind of fold was not formed."""
    generators = np.array([g or "" for g in table["group"]], dtype=object)
    sources = np.array([s or "" for s in table.get("source") or [""] * len(y)], dtype=object)
    folds, skipped, seen = [], [], []
    for kind, groups, label, what in (
        ("generators", generators, 1, "generator(s) among the synthetic images"),
        ("sources", sources, 1, "source group(s) among the synthetic images"),
        ("sources", sources, 0, "source group(s) among the real images"),
    ):
        named = sorted({g for g in groups[y == label] if g})
        if len(named) < 2:
            hint = (
                "put each generator's images in its own sub-folder"
                if kind == "generators"
                else "images in at least two top-level folders or shards"
            )
            skipped.append(f"{len(named)} {what}; at least 2 are needed ({hint})")
            continue
        for name in named:
            member = (groups == name) & (y == label)
            if not any((member == other).all() for other in seen):
                seen.append(member)
                folds.append((kind, name, label, member))
    return folds, skipped


def _fold(
    member: np.ndarray,
    label: int,
    rest: np.ndarray,
    is_heldout: np.ndarray,
    combined: np.ndarray,
    other_flags: np.ndarray,
    scores: np.ndarray | None,
    probe_result: dict,
) -> dict:
    """One fold's rates on its held-out images without hard evidence, as calibrated and left out of training."""
    rate = "tpr" if label else "fpr"
    test = member & rest
    entry = {
        "class": "synthetic" if label else "real",
        "heldout_rest": int(test.sum()),
        "train": int((member & ~is_heldout).sum()),
    }
    if test.sum() < MIN_FOLD_IMAGES:
        entry["skipped"] = f"fewer than {MIN_FOLD_IMAGES} held-out images without hard evidence"
        return entry
    entry[rate] = float(combined[test].mean())
    entry["mean_score"] = None if scores is None else float(scores[test].mean())
    unseen = probe_result["retrain"](~is_heldout & ~member) if probe_result.get("retrain") else None
    if unseen is not None:
        entry[f"{rate}_unseen"] = float((other_flags[test] | unseen[1][test]).mean())
        entry["mean_score_unseen"] = float(unseen[0][test].mean())
    return entry


def _write_items(
    path: Path,
    table: dict,
    is_heldout: np.ndarray,
    combined: np.ndarray,
    scores: np.ndarray | None,
    groups: list[str | None],
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "sha256": table["sha256"],
        "label": table["label"].tolist(),
        "heldout": is_heldout.tolist(),
        "hard_evidence": table["hard"].tolist(),
        "flagged": combined.tolist(),
        "probe_score": [None] * len(table["label"]) if scores is None else scores.tolist(),
        "generator": list(groups),
    }
    schema = pa.schema(
        [
            ("sha256", pa.string()),
            ("label", pa.int8()),
            ("heldout", pa.bool_()),
            ("hard_evidence", pa.bool_()),
            ("flagged", pa.bool_()),
            ("probe_score", pa.float64()),
            ("generator", pa.string()),
        ]
    )
    write_atomically(path, lambda p: pq.write_table(pa.table(columns, schema=schema), p))


def rates(flagged: np.ndarray, labels: np.ndarray, confidence: float = 0.95) -> dict:
    """TPR and FPR with Clopper-Pearson intervals and the counts they rest on."""
    tp = int((flagged & (labels == 1)).sum())
    fp = int((flagged & (labels == 0)).sum())
    n_syn, n_real = int((labels == 1).sum()), int((labels == 0).sum())
    return {
        "tpr": tp / n_syn if n_syn else None,
        "tpr_interval": list(clopper_pearson(tp, n_syn, confidence)),
        "fpr": fp / n_real if n_real else None,
        "fpr_interval": list(clopper_pearson(fp, n_real, confidence)),
        "tp": tp,
        "fn": n_syn - tp,
        "fp": fp,
        "tn": n_real - fp,
        "n_synthetic": n_syn,
        "n_real": n_real,
    }


def _counts(table: dict, is_heldout: np.ndarray, scans: dict[int, ScanResult]) -> dict:
    y = table["label"]
    return {
        "real": {
            "scanned": scans[0].summary["counts"]["total"],
            "errors": scans[0].summary["counts"]["error"],
            "train": int(((y == 0) & ~is_heldout).sum()),
            "heldout": int(((y == 0) & is_heldout).sum()),
        },
        "synthetic": {
            "scanned": scans[1].summary["counts"]["total"],
            "errors": scans[1].summary["counts"]["error"],
            "train": int(((y == 1) & ~is_heldout).sum()),
            "heldout": int(((y == 1) & is_heldout).sum()),
        },
    }
