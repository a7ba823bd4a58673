"""The scan summary: counts, the synthetic-fraction estimate, per-detector and per-generator
counts, errors by reason, skipped detectors, near-duplicate clusters, versions and configuration.
This is what summary.json holds."""
from __future__ import annotations

import platform
import sys
from collections import Counter
from importlib import metadata

from audit.estimate import scan_estimate
from audit.report.groups import breakdown

VERSIONED_PACKAGES = ("autophagy-audit", "Pillow", "numpy", "invisible-watermark", "opencv-python", "c2pa-python",
                      "open_clip_torch", "torch", "faiss-cpu")
MAX_LISTED_CLUSTERS = 20
MAX_LISTED_MEMBERS = 20  # ids listed per cluster (its size is given in full)
MAX_LISTED_ERRORS = 20  # error rows named in summary.json (all are in results.parquet)


def summarise(rows: list[dict], config, source: str, stage=None, calibration: dict | None = None) -> dict:
    ok_rows = [r for r in rows if r["status"] == "ok"]
    flagged = sum(1 for r in ok_rows if r["flagged"])
    hard = sum(1 for r in ok_rows if r["hard_evidence"])
    skipped = dict(stage.skipped) if stage else {}
    ran = [d for d in config.detectors if d not in skipped]
    summary = {
        "source": source,
        "counts": {"total": len(rows), "ok": len(ok_rows), "error": len(rows) - len(ok_rows),
                   "flagged": flagged, "hard_evidence": hard},
        "estimate": scan_estimate(ok_rows, ran, calibration, config),
        "detectors": ran,
        "skipped_detectors": skipped,
        "notes": list(stage.notes) if stage else [],
        "per_detector": {name: dict(Counter(r[f"{name}_decision"] for r in ok_rows)) for name in ran},
        "per_generator": dict(Counter(r["generator"] for r in ok_rows if r["generator"]).most_common()),
        "per_tool": dict(Counter(r.get("tool") for r in ok_rows if r.get("tool")).most_common()),
        "groups": breakdown(rows, config.group_by),
        "errors": {
            "count": len(rows) - len(ok_rows),
            "by_reason": dict(Counter(error_kind(r["error"]) for r in rows if r["status"] == "error").most_common()),
            "first": [{"id": r["id"], "error": r["error"]} for r in rows if r["status"] == "error"][:MAX_LISTED_ERRORS],
        },
        "versions": versions(),
        "config": config.as_dict(),
    }
    if "watermark" in ran:
        summary["watermark"] = watermark_false_matches(ok_rows, config)
    if stage is not None and stage.active:
        summary["duplicates"] = duplicate_clusters(ok_rows, stage, config.neardup_hard, config.phash_distance)
    if calibration is not None:
        summary["calibration"] = calibration
    return summary


def watermark_false_matches(ok_rows: list[dict], config) -> dict:
    """The watermark test's correction for the keys and channel orders it tries, and the matches expected
    on unmarked images among those it tested (images it could judge)."""
    from audit.detectors import build_watermark_detector

    tested = sum(1 for r in ok_rows if r.get("watermark_score") is not None)
    return build_watermark_detector(config).false_matches(tested)


def duplicate_clusters(ok_rows: list[dict], stage, threshold: float, phash_distance: int) -> dict:
    """Near-duplicate clusters within the scan (embedding similarity >= threshold, or pHash distance
    <= phash_distance; pHash alone when the scan loads no model); unflagged members of a cluster
    holding a flagged image count as flagged copies."""
    import numpy as np

    from audit.embedding.embedder import normalise

    if stage.hash_only:
        return _clusters_summary([r for r in ok_rows if r["phash"]], None, threshold, phash_distance)
    embedded = [(r, stage.vector(r["sha256"])) for r in ok_rows]
    embedded = [(r, v) for r, v in embedded if v is not None]
    vectors = normalise(np.stack([v for _, v in embedded]))[0] if embedded else None
    return _clusters_summary([r for r, _ in embedded], vectors, threshold, phash_distance)


def _clusters_summary(rows: list[dict], vectors, threshold: float, phash_distance: int) -> dict:
    from audit.bank.clusters import near_duplicate_clusters

    if not rows:
        return {"threshold": threshold, "phash_distance": phash_distance, "clusters": 0, "images_in_clusters": 0,
                "flagged_copies": 0, "largest": [], "largest_sizes": []}
    by_id = {r["id"]: r for r in rows}
    clusters = near_duplicate_clusters(vectors, list(by_id), threshold=threshold,
                                       phashes=[r["phash"] for r in by_id.values()], phash_distance=phash_distance)
    copies = [i for c in clusters if any(by_id[j]["flagged"] for j in c) for i in c if not by_id[i]["flagged"]]
    return {
        "threshold": threshold,
        "phash_distance": phash_distance,
        "clusters": len(clusters),
        "images_in_clusters": sum(len(c) for c in clusters),
        "flagged_copies": len(copies),
        "flagged_copy_ids": copies[:MAX_LISTED_CLUSTERS],
        "largest": [members[:MAX_LISTED_MEMBERS] for members in clusters[:MAX_LISTED_CLUSTERS]],
        "largest_sizes": [len(members) for members in clusters[:MAX_LISTED_CLUSTERS]],
    }


def error_kind(error: str) -> str:
    """The reason's category: the text before the first colon ("corrupt image", "unreadable", ...)."""
    return error.split(":", 1)[0].strip()


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found["platform"] = sys.platform
    return found
