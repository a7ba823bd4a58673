"""The simulated internet: real data, published synthetic data, and each loop type's training pool.

Items enter the world in blocks (the real items drawn at one generation, or one generation's
published samples). A block carries its ground truth (real or synthetic, generation of origin)
and one `luck` draw per item for the toy filters. Arrays have a leading runs axis R.

Pools, with n = samples per generation and s = round(contamination * n) from generation 1 on
(generation 0 always trains on n real items):
  fully-synthetic  the n samples of generation g-1
  augment          the first n-s items of the fixed real set of generation 0, plus s samples of g-1
  fresh            n-s newly drawn real items, plus s samples of g-1
  accumulate       the n real items of generation 0 plus all samples of generations 0..g-1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REAL_0 = "real-g000"


@dataclass
class Block:
    name: str
    x: np.ndarray  # (R, m, *item_shape)
    synthetic: bool
    origin: int  # generation of the model that made it; for real items, when they were drawn
    luck: np.ndarray  # (R, m) uniform draws in [0, 1): the toy detectors' coin for each item
    y: np.ndarray | None = None  # (R, m) class labels (image worlds)
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # detector -> (R, m) flagged synthetic

    def meta(self) -> dict:
        return {"name": self.name, "synthetic": self.synthetic, "origin": self.origin}

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything per item, for a checkpoint."""
        out = {"x": self.x, "luck": self.luck, **{f"flag_{k}": v for k, v in self.flags.items()}}
        return out if self.y is None else {**out, "y": self.y}

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray]) -> Block:
        flags = {k[len("flag_") :]: v for k, v in arrays.items() if k.startswith("flag_")}
        return cls(meta["name"], arrays["x"], meta["synthetic"], meta["origin"], arrays["luck"], arrays.get("y"), flags)


@dataclass
class Pool:
    """A training pool: the first `count` items of each block, with ground truth per item."""

    parts: list[tuple[Block, int]]

    @property
    def x(self) -> np.ndarray:
        return np.concatenate([b.x[:, :m] for b, m in self.parts], axis=1)

    @property
    def luck(self) -> np.ndarray:
        return np.concatenate([b.luck[:, :m] for b, m in self.parts], axis=1)

    @property
    def y(self) -> np.ndarray | None:
        if any(b.y is None for b, _ in self.parts):
            return None
        return np.concatenate([b.y[:, :m] for b, m in self.parts], axis=1)

    def flag(self, detector: str) -> np.ndarray:
        """(R, N) bool: items the detector flagged (False where it has not run, e.g. no probe yet)."""
        return np.concatenate(
            [
                b.flags[detector][:, :m] if detector in b.flags else np.zeros(b.luck[:, :m].shape, bool)
                for b, m in self.parts
            ],
            axis=1,
        )

    @property
    def detectors(self) -> list[str]:
        names = []
        for b, _ in self.parts:
            names += [d for d in b.flags if d not in names]
        return names

    @property
    def synthetic(self) -> np.ndarray:
        return np.concatenate([np.full(m, b.synthetic) for b, m in self.parts])

    @property
    def origin(self) -> np.ndarray:
        return np.concatenate([np.full(m, b.origin) for b, m in self.parts])

    def counts(self, keep: np.ndarray) -> dict:
        """Ground-truth counts: in the pool (same for every run) and kept by the filter (per run)."""
        synthetic = self.synthetic
        return {
            "pool_real": int((~synthetic).sum()),
            "pool_synthetic": int(synthetic.sum()),
            "kept_real": (keep & ~synthetic).sum(1),
            "kept_synthetic": (keep & synthetic).sum(1),
        }


class World:
    """`internet` (image worlds): publishes every block as files and runs the curator's detectors on
    them as it enters (loops/images/internet.py); toy worlds keep their items as drawn."""

    def __init__(self, data, loop: str, contamination: float | None, n: int, test_size: int, streams, internet=None):
        self.data, self.loop, self.n, self.streams, self.internet = data, loop, n, streams, internet
        self.n_synthetic = n if contamination is None else int(round(contamination * n))
        self.test = np.stack([data.test_set(rng, test_size) for rng in streams.data])
        self.blocks: dict[str, Block] = {}

    def training_pool(self, g: int) -> Pool:
        n, s = self.n, self.n_synthetic
        if g == 0:
            return Pool([(self._draw_real(0, n), n)])
        previous = self.blocks[_synthetic_name(g - 1)]
        if self.loop == "fully-synthetic":
            return Pool([(previous, n)])
        if self.loop == "augment":
            return Pool([(self.blocks[REAL_0], n - s), (previous, s)])
        if self.loop == "fresh":
            return Pool([(self._draw_real(g, n - s), n - s), (previous, s)])
        earlier = [(self.blocks[_synthetic_name(k)], n) for k in range(g)]
        return Pool([(self.blocks[REAL_0], n)] + earlier)

    def publish(self, samples: np.ndarray, g: int, y: np.ndarray | None = None) -> None:
        """Generation g's samples go online; blocks no later pool needs are forgotten."""
        self._add(Block(_synthetic_name(g), samples, True, g, self._luck(samples.shape[1]), y))
        keep_real = self.loop in ("augment", "accumulate")
        self.blocks = {
            name: b
            for name, b in self.blocks.items()
            if (name == REAL_0 and keep_real)
            or name == _synthetic_name(g)
            or (b.synthetic and self.loop == "accumulate")
        }

    def restore(self, blocks: list[Block]) -> None:
        self.blocks = {b.name: b for b in blocks}

    def _draw_real(self, g: int, m: int) -> Block:
        drawn = [self.data.draw(rng, m) for rng in self.streams.data]
        if getattr(self.data, "labelled", False):
            x, y = np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn])
        else:
            x, y = np.stack(drawn), None
        return self._add(Block(f"real-g{g:03d}", x, False, g, self._luck(m), y))

    def _luck(self, m: int) -> np.ndarray:
        return np.stack([rng.random(m) for rng in self.streams.filter])

    def _add(self, block: Block) -> Block:
        if self.internet is not None:
            self.internet.enter(block)
        self.blocks[block.name] = block
        return block


def _synthetic_name(g: int) -> str:
    return f"synthetic-g{g:03d}"
