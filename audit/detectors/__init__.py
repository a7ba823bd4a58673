"""The detector stack: names the CLI accepts and how each detector is built from a ScanConfig.

Pixel detectors run in the decode workers; embedding detectors run in the main process on
the embedding stage's output.
"""

from __future__ import annotations

from audit.detectors.base import Detector

PIXEL_DETECTORS = ("metadata", "watermark")
EMBEDDING_DETECTORS = ("probe", "neardup")
AVAILABLE = PIXEL_DETECTORS + EMBEDDING_DETECTORS
DEFAULT = PIXEL_DETECTORS


def check_names(names, config) -> None:
    unknown = [n for n in names if n not in AVAILABLE]
    if unknown:
        raise ValueError(f"unknown detector(s): {', '.join(unknown)}; available: {', '.join(AVAILABLE)}")
    if "probe" in names and not config.probe:
        raise ValueError("the probe detector needs a trained probe: --probe DIR or --calibration DIR")
    if "neardup" in names and not config.bank:
        raise ValueError("the neardup detector needs a bank of known synthetic images: --bank DIR")


def build_pixel_detectors(config) -> list[Detector]:
    detectors: list[Detector] = []
    if "metadata" in config.detectors:
        from audit.detectors.metadata import MetadataDetector

        detectors.append(MetadataDetector())
    if "watermark" in config.detectors:
        detectors.append(build_watermark_detector(config))
    return detectors


def build_watermark_detector(config) -> Detector:
    """The watermark detector with the known keys, the user's keys and the p-value threshold."""
    from audit.detectors.watermark import DEFAULT_P_THRESHOLD, KNOWN_KEYS, WatermarkDetector, WatermarkKey

    keys = KNOWN_KEYS + tuple(WatermarkKey.parse(s) for s in config.watermark_keys)
    return WatermarkDetector(keys, config.watermark_p_threshold or DEFAULT_P_THRESHOLD)


def build_embedding_detectors(config) -> list[Detector]:
    """Probe and near-duplicate detectors; each must use the scan's embedder."""
    from audit.embedding.backends import same_encoder

    detectors: list[Detector] = []
    if "probe" in config.detectors:
        from audit.detectors.probe import LinearProbe, ProbeDetector

        detectors.append(ProbeDetector(LinearProbe.load(config.probe)))
    if "neardup" in config.detectors:
        from audit.detectors.neardup import NearDupDetector

        detectors.append(NearDupDetector(config.bank, **config.neardup_options()))
        detectors[-1].bank.check_embedder(config.embedder)  # BankError: another model, or hashes vs embeddings
    for detector in detectors:
        if not same_encoder(detector.embedder_spec, detector.encoder_id, config.embedder):
            raise ValueError(
                f"the {detector.name} detector was built with embedder {detector.embedder_spec!r} "
                f"but the scan uses {config.embedder!r}; pass --embedder {detector.embedder_spec}"
            )
    return detectors
