"""Per-run random streams: run r of a configuration draws everything from seed + r.

Each run has three independent generators, so changing one part of the set-up (for example
the filter) leaves the other draws (the real data, the model's samples) unchanged:
`data` (real items, test set), `filter` (each item's detector luck), `model` (fitting, sampling).
"""

from __future__ import annotations

import numpy as np

STREAMS = ("data", "filter", "model")


class Streams:
    def __init__(self, seed: int, runs: int):
        self.seeds = [seed + r for r in range(runs)]
        children = [np.random.SeedSequence(s).spawn(len(STREAMS)) for s in self.seeds]
        for i, name in enumerate(STREAMS):
            setattr(self, name, [np.random.default_rng(c[i]) for c in children])

    def state(self) -> dict:
        return {name: [g.bit_generator.state for g in getattr(self, name)] for name in STREAMS}

    def restore(self, state: dict) -> None:
        for name in STREAMS:
            for generator, saved in zip(getattr(self, name), state[name], strict=True):
                generator.bit_generator.state = saved
