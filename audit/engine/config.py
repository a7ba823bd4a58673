"""`ScanConfig`: the options that change a scan's results, and how defaults are resolved.

Resolution (`resolved()`): a calibration folder supplies its probe; a probe or bank adds its
detector; the embedder defaults to the probe's, else the bank's, else `DEFAULT_SPEC`; the
preprocessing follows the probe's. The embedder `none` loads no model: the scan computes perceptual
hashes only (preprocessing HASH_ONLY) for a pHash bank, and the probe cannot run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from audit.bank.kinds import NO_EMBEDDER
from audit.bank.phash import DEFAULT_PHASH_DISTANCE
from audit.detectors import DEFAULT, EMBEDDING_DETECTORS, check_names
from audit.sources.decode import DEFAULT_PIXEL_LIMIT

CALIBRATION_FILE = "calibration.json"
GROUP_BY = ("shard", "folder", "domain")  # the breakdown's groups (audit/report/groups.py)
HASH_ONLY = ""  # the preprocessing of a scan without a model: workers hash each image, prepare no model input


@dataclass(frozen=True)
class ScanConfig:
    """The options that change a scan's results (`audit scan`'s options of the same names).

    detectors: which to run (metadata, watermark, probe, neardup; probe and neardup are added when
    a probe or bank is given). pixel_limit: larger images are refused as decompression bombs.
    follow_links: none / inside / all. allow_missing_shards: scan the paths of a pattern that exist.
    watermark_keys: extra keys NAME=bytes:TEXT|bits:0101|hex:ABCD. watermark_p_threshold: per image.
    column: the image column of a parquet or Hugging Face source. paths_under: the folder that relative
    path cells of a parquet or Hugging Face source are under (they must lead inside it). embedder:
    open_clip spec, `random` (tests) or `none` (a pHash bank). preprocess: clip or univfd. probe, bank,
    calibration: folders.
    neardup_hard / neardup_soft / phash_distance: the bank's match thresholds. embed: compute
    embeddings even when no detector needs them.
    """

    detectors: tuple[str, ...] = DEFAULT
    pixel_limit: int = DEFAULT_PIXEL_LIMIT
    follow_links: str = "inside"  # folder sources: links followed none / only inside the folder / all
    allow_missing_shards: bool = False  # a pattern may name paths that do not exist (they are listed)
    watermark_keys: tuple[str, ...] = ()
    watermark_p_threshold: float | None = None
    column: str | None = None
    paths_under: str | None = None  # folder that relative path cells are under (default: the parquet file's folder)
    embedder: str | None = None  # None: the probe's or bank's embedder, else DEFAULT_SPEC
    preprocess: str | None = None  # None: the probe's, else "clip"
    probe: str | None = None  # probe folder (probe.safetensors + probe.json)
    bank: str | None = None  # near-duplicate bank folder
    neardup_hard: float = 0.95
    neardup_soft: float = 0.85
    phash_distance: int = DEFAULT_PHASH_DISTANCE
    calibration: str | None = None  # folder written by `audit calibrate`
    embed: bool = False  # compute embeddings even when no detector needs them (calibrate, bank add)
    group_by: str | None = None  # the summary's breakdown: shard, folder or domain (None: what fits the source)

    def as_dict(self) -> dict:
        """JSON-ready (lists, not tuples), as written to the journal and the summary."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def neardup_options(self) -> dict:
        return {
            "hard_threshold": self.neardup_hard,
            "soft_threshold": self.neardup_soft,
            "phash_distance": self.phash_distance,
        }

    @property
    def needs_embeddings(self) -> bool:
        return self.embed or any(d in EMBEDDING_DETECTORS for d in self.detectors)

    def resolved(self) -> ScanConfig:
        """Defaults filled in and checked; raises ValueError for inconsistent options."""
        # imported when resolving: worker processes unpickle a ScanConfig and need none of the model code
        from audit.embedding.backends import DEFAULT_SPEC
        from audit.engine.user_files import check_probe

        config = self
        if config.group_by not in (None, *GROUP_BY):
            raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)}, got {config.group_by!r}")
        if config.calibration:
            probe_dir = Path(config.calibration) / "probe"
            if not (Path(config.calibration) / CALIBRATION_FILE).is_file():
                raise ValueError(f"not a calibration folder (no {CALIBRATION_FILE}): {config.calibration}")
            if probe_dir.is_dir() and not config.probe:
                config = replace(config, probe=str(probe_dir))
        detectors = list(config.detectors)
        detectors += [
            name
            for name, given in (("probe", config.probe), ("neardup", config.bank))
            if given and name not in detectors
        ]
        config = replace(config, detectors=tuple(detectors))
        check_names(config.detectors, config)
        if config.embedder == NO_EMBEDDER and "probe" in config.detectors:
            raise ValueError(
                f"the probe detector needs a model's embeddings; --embedder {NO_EMBEDDER} loads no "
                "model (it serves banks of perceptual hashes)"
            )
        probe = check_probe(config.probe) if config.probe else {}
        load_calibration(config.calibration)  # checked now, not after the scan
        embedder = config.embedder or probe.get("embedder") or _bank_embedder(config.bank) or DEFAULT_SPEC
        if embedder == NO_EMBEDDER:  # workers hash each image and prepare no model input
            return replace(config, embedder=embedder, preprocess=HASH_ONLY)
        return replace(config, embedder=embedder, preprocess=config.preprocess or probe.get("preprocess") or "clip")


def _bank_embedder(folder: str | None) -> str | None:
    if not folder:
        return None
    from audit.bank.index import Bank

    return Bank.open(folder).embedder_spec


def load_calibration(folder: str | None) -> dict | None:
    if not folder:
        return None
    from audit.engine.user_files import check_calibration

    return check_calibration(Path(folder) / CALIBRATION_FILE)
