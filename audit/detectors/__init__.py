"""The detector stack: names the CLI accepts and how each detector is built."""
from __future__ import annotations

from audit.detectors.base import Detector

AVAILABLE = ("metadata", "watermark")
DEFAULT = ("metadata", "watermark")


def build_detectors(names, watermark_keys=(), watermark_p_threshold=None) -> list[Detector]:
    """Detector instances for `names` (validated); extra watermark keys are `NAME=kind:value` specs."""
    unknown = [n for n in names if n not in AVAILABLE]
    if unknown:
        raise ValueError(f"unknown detector(s): {', '.join(unknown)}; available: {', '.join(AVAILABLE)}")
    detectors: list[Detector] = []
    for name in names:
        if name == "metadata":
            from audit.detectors.metadata import MetadataDetector

            detectors.append(MetadataDetector())
        elif name == "watermark":
            from audit.detectors.watermark import DEFAULT_P_THRESHOLD, KNOWN_KEYS, WatermarkDetector, WatermarkKey

            keys = KNOWN_KEYS + tuple(WatermarkKey.parse(s) for s in watermark_keys)
            detectors.append(WatermarkDetector(keys, watermark_p_threshold or DEFAULT_P_THRESHOLD))
    return detectors
