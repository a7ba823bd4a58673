"""The internet of an image world: every block is published as files (loops/images/publish.py), scraped
back at the model's resolution, and checked by each run's curator (loops/images/curator.py) as it enters.

Detectors decide once per item, when it enters, as a real curator's would on the same file. The
probe exists only after generation 0 (it is trained on generation-0 output), so files that entered
before it are kept until `train_probes` has run and then get their probe flags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loops.images.curator import Curator
from loops.images.publish import PublishSettings, render, scrape


class Internet:
    def __init__(
        self,
        settings: PublishSettings,
        detectors: tuple[str, ...],
        folder: Path,
        embedder: str,
        bank_rate: float,
        rngs: list[np.random.Generator],
        resolution: int,
        probe: str | None = None,
    ):
        self.settings, self.rngs, self.resolution = settings, rngs, resolution
        self.curators = [
            Curator(detectors, Path(folder) / f"run-{r}", embedder, bank_rate, probe) for r in range(len(rngs))
        ]
        self.waiting: list[tuple] = []  # (block, run, files) still without probe flags
        self.has_bank = "neardup" in detectors

    @property
    def needs_probe(self) -> bool:
        return any(c.needs_probe_training for c in self.curators)

    def enter(self, block) -> None:
        """Publish the block's items, replace them by their scraped copies, and set its flags.
        An empty block (a fresh loop at contamination 1 draws no real images) has nothing to publish."""
        if block.x.shape[1] == 0:
            return
        scraped, flags = [], {}
        for r, (rng, curator) in enumerate(zip(self.rngs, self.curators)):
            published = render(block.x[r], block.synthetic, rng, self.settings, keep_originals=self.has_bank)
            tag = f"{block.name}-run{r}"
            if block.synthetic:
                curator.remember(published.originals or published.files, rng, tag)
            for name, flagged in curator.flags(published.files, tag).items():
                flags.setdefault(name, []).append(flagged)
            if curator.needs_probe_training:
                self.waiting.append((block, r, published.files))
            scraped.append(np.stack([scrape(f, self.resolution) for f in published.files]))
        block.x = np.stack(scraped)
        block.flags.update({name: np.stack(values) for name, values in flags.items() if len(values) == len(self.rngs)})

    def publish_for_calibration(self, images: np.ndarray, synthetic: bool) -> list[list[bytes]]:
        """Files the curators know the truth of (never trained on), per run."""
        return [render(images[r], synthetic, rng, self.settings).files for r, rng in enumerate(self.rngs)]

    def train_probes(self, real: list[list[bytes]], synthetic: list[list[bytes]]) -> list[dict]:
        """Each run's curator calibrates its probe; blocks that entered earlier get their probe flags."""
        reports = [
            c.train_probe(real[r], synthetic[r]) if c.needs_probe_training else None
            for r, c in enumerate(self.curators)
        ]
        by_block: dict[str, dict[int, np.ndarray]] = {}
        blocks = {}
        for block, r, files in self.waiting:
            found = self.curators[r].flags(files, f"{block.name}-run{r}-probe", only=("probe",))
            by_block.setdefault(block.name, {})[r] = found["probe"]
            blocks[block.name] = block
        for name, per_run in by_block.items():
            blocks[name].flags["probe"] = np.stack([per_run[r] for r in sorted(per_run)])
        self.waiting = []
        return reports
