"""The scan summary: counts, flagged fraction with its interval, per-detector and per-generator
counts, errors by reason, versions and configuration. This is what summary.json holds."""
from __future__ import annotations

import platform
import sys
from collections import Counter
from importlib import metadata

from audit.estimate import hard_evidence_estimate

VERSIONED_PACKAGES = ("autophagy-audit", "Pillow", "numpy", "invisible-watermark", "opencv-python", "c2pa-python")


def summarise(rows: list[dict], detectors, source: str, config: dict) -> dict:
    ok_rows = [r for r in rows if r["status"] == "ok"]
    flagged = sum(1 for r in ok_rows if r["flagged"])
    return {
        "source": source,
        "counts": {"total": len(rows), "ok": len(ok_rows), "error": len(rows) - len(ok_rows), "flagged": flagged},
        "estimate": hard_evidence_estimate(flagged, len(ok_rows)),
        "per_detector": {name: dict(Counter(r[f"{name}_decision"] for r in ok_rows)) for name in detectors},
        "per_generator": dict(Counter(r["generator"] for r in ok_rows if r["generator"]).most_common()),
        "errors": {
            "count": len(rows) - len(ok_rows),
            "by_reason": dict(Counter(error_kind(r["error"]) for r in rows if r["status"] == "error").most_common()),
        },
        "versions": versions(),
        "config": config,
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
