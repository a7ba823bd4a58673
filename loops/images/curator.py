"""The curator of one run: the real audit detectors (audit.scan) over the files a generation published.

- watermark: the scan's watermark detector, as is.
- probe: a linear probe on embeddings, trained by `audit.calibrate` on published generation-0 real
  vs synthetic files the curator knows (drawn for it, never trained on), or loaded from a given
  calibration folder or probe folder.
- neardup: a bank (`audit bank add`) holding the share `bank_rate` of each generation's synthetic
  output the curator knows of, as rendered before any internet transform; published files are
  matched against it by embedding similarity and perceptual hash. With a random-weights embedder,
  similarities mean nothing, so the near-duplicate detector lets only the perceptual hash decide.

Files are written to a scratch folder, scanned, and removed; the flags are what the loop keeps.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically
from audit.engine.user_files import UserFileError, check_probe
from loops.errors import ConfigError

DETECTORS = ("watermark", "probe", "neardup")
PNG_MAGIC = b"\x89PNG"


class Curator:
    def __init__(self, names: tuple[str, ...], folder: Path, embedder: str, bank_rate: float, probe: str | None = None):
        self.names, self.folder, self.embedder, self.bank_rate = names, Path(folder), embedder, bank_rate
        self.folder.mkdir(parents=True, exist_ok=True)
        self.bank_dir = self.folder / "bank"
        self.calibration_dir = self.folder / "calibration"
        self.given_probe = _probe_folder(probe) if probe else None
        if self.given_probe:
            try:  # audit's check of a probe folder: probe.json's fields, the weights never unpickled
                self.embedder = check_probe(self.given_probe)["embedder"]
            except UserFileError as e:
                raise ConfigError(f"--probe {e}") from None
        if ("probe" in names and not self.given_probe) or "neardup" in names:
            _check_embedder(self.embedder)

    @property
    def probe(self) -> str | None:
        """The probe folder, once there is one."""
        if self.given_probe:
            return self.given_probe
        trained = self.calibration_dir / "probe"
        return str(trained) if (trained / "probe.json").is_file() else None

    @property
    def needs_probe_training(self) -> bool:
        return "probe" in self.names and self.probe is None

    def flags(self, files: list[bytes], tag: str, only: tuple[str, ...] = DETECTORS) -> dict[str, np.ndarray]:
        """{detector: (m,) bool flagged synthetic} for the detectors (of `only`) that can run now."""
        from audit.engine.local import scan

        config = self._scan_config(only)
        if not config.detectors:
            return {}
        with self._scratch(files, tag) as folder:
            rows = scan(str(folder), config=config, workers=1).rows
        order = {row["id"]: row for row in rows}
        names = [_name(i, data) for i, data in enumerate(files)]
        return {d: np.array([order[n][f"{d}_decision"] == "synthetic" for n in names]) for d in config.detectors}

    def remember(self, files: list[bytes], rng: np.random.Generator, tag: str) -> np.ndarray:
        """Add the known share of a generation's synthetic files to the bank; (m,) bool known."""
        known = rng.random(len(files)) < self.bank_rate
        if "neardup" in self.names and known.any():
            from audit.bank_add import add_to_bank

            with self._scratch([f for f, k in zip(files, known) if k], tag) as folder:
                add_to_bank(str(folder), self.bank_dir, label=tag, embedder=self.embedder, workers=1)
        return known

    def train_probe(self, real: list[bytes], synthetic: list[bytes]) -> dict:
        """`audit calibrate` on known real vs synthetic files; returns what calibration.json holds."""
        from audit.calibrate import calibrate
        from audit.engine.config import ScanConfig

        with (
            self._scratch(real, "calibration-real") as real_dir,
            self._scratch(synthetic, "calibration-synthetic") as synthetic_dir,
        ):
            report = calibrate(
                str(real_dir),
                str(synthetic_dir),
                self.calibration_dir,
                config=ScanConfig(detectors=(), embedder=self.embedder),
                workers=1,
            )
        if self.probe is None:
            raise RuntimeError(f"the curator's probe could not be trained: {report.get('probe')}")
        return report

    def _scan_config(self, only: tuple[str, ...]):
        from audit.engine.config import ScanConfig

        wanted = [d for d in self.names if d in only]
        detectors = ("watermark",) if "watermark" in wanted else ()
        probe = self.probe if "probe" in wanted else None
        bank = str(self.bank_dir) if "neardup" in wanted and (self.bank_dir / "bank.json").is_file() else None
        return ScanConfig(detectors=detectors, probe=probe, bank=bank, embedder=self.embedder).resolved()

    def _scratch(self, files: list[bytes], tag: str):
        return _scratch_folder(self.folder / f"scratch-{tag}", files)


def _probe_folder(given: str) -> str:
    """A probe folder, or a calibration folder's probe."""
    for folder in (Path(given), Path(given) / "probe"):
        if (folder / "probe.json").is_file():
            return str(folder)
    raise ConfigError(f"--probe {given}: no probe.json there or in its probe/ folder (train one with audit calibrate)")


def _check_embedder(spec: str) -> None:
    """Missing weights are a clear error before any work, not a filter that silently does nothing."""
    from audit.embedding.backends import check_available
    from audit.embedding.embedder import WeightsMissing

    try:
        check_available(spec)
    except (ValueError, WeightsMissing) as e:
        raise ConfigError(
            f"--probe-embedder: {e} Offline, a random-weights embedder (e.g. random:ViT-S-32) "
            "runs the same code path; its probe is then only as good as random features are."
        ) from None


@contextmanager
def _scratch_folder(folder: Path, files: list[bytes]):
    """A folder holding `files` for the duration of a `with` block."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        for i, data in enumerate(files):
            write_atomically(folder / _name(i, data), lambda p, d=data: p.write_bytes(d))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _name(i: int, data: bytes) -> str:
    return f"{i:06d}" + (".png" if data.startswith(PNG_MAGIC) else ".jpg")
