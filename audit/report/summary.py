"""The scan summary: counts, the synthetic-fraction estimate, per-detector and per-generator
counts, errors by reason, skipped detectors, near-duplicate clusters, versions and configuration.
This is what summary.json holds; it is built from a ScanTally, the aggregates of the rows streamed
past once."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from audit.estimate import scan_estimate
from audit.report.duplicates import DuplicateTally
from audit.report.tally import ScanTally

VERSIONED_PACKAGES = (
    "autophagy-audit",
    "Pillow",
    "numpy",
    "invisible-watermark",
    "opencv-python",
    "c2pa-python",
    "open_clip_torch",
    "torch",
    "faiss-cpu",
)
MAX_LISTED_ERRORS = 20  # error rows named in summary.json (all are in results.parquet)


def new_tally(config, stage=None) -> ScanTally:
    """An empty tally for a scan with `config` (clustering near-duplicates when the stage embeds or hashes)."""
    skipped = dict(stage.skipped) if stage else {}
    duplicates = (
        DuplicateTally(stage, config.neardup_hard, config.phash_distance)
        if stage is not None and stage.active
        else None
    )
    return ScanTally([d for d in config.detectors if d not in skipped], config.group_by, duplicates)


def tally_summary(tally: ScanTally, config, source: str, stage=None, calibration: dict | None = None) -> dict:
    errors = tally.total - tally.ok
    summary = {
        "source": source,
        "counts": {
            "total": tally.total,
            "ok": tally.ok,
            "error": errors,
            "flagged": tally.flagged,
            "hard_evidence": tally.hard,
        },
        "estimate": scan_estimate(tally.evidence, tally.detectors, calibration, config),
        "detectors": tally.detectors,
        "skipped_detectors": dict(stage.skipped) if stage else {},
        "notes": list(stage.notes) if stage else [],
        "per_detector": {name: dict(counts) for name, counts in tally.per_detector.items()},
        "per_generator": dict(tally.generators.most_common()),
        "per_tool": dict(tally.tools.most_common()),
        "groups": tally.groups.breakdown(),
        "errors": {
            "count": errors,
            "by_reason": dict(tally.error_reasons.most_common()),
            "by_kind": dict(tally.error_kinds.most_common()),
            "first": [{"id": r["id"], "error": r["error"]} for r in tally.listed.errors[:MAX_LISTED_ERRORS]],
        },
        "versions": versions(),
        "config": config.as_dict(),
    }
    if "watermark" in tally.detectors:
        summary["watermark"] = watermark_false_matches(tally.watermark_tested, config)
    if tally.duplicates is not None:
        summary["duplicates"] = tally.duplicates.summary()
    if calibration is not None:
        summary["calibration"] = calibration
    return summary


def watermark_false_matches(tested: int, config) -> dict:
    """The watermark test's correction for the keys and channel orders it tries, and the matches expected
    on unmarked images among the `tested` ones (images it could judge)."""
    from audit.detectors import build_watermark_detector

    return build_watermark_detector(config).false_matches(tested)


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found["platform"] = sys.platform
    return found
