"""Per-generation checkpoints of one configuration's loop, so an interrupted run resumes at the
next generation with identical results.

Files in the configuration's folder (no pickles: arrays in .npz, the rest JSON):
  state.json          config, last finished generation, RNG states, world blocks, committed rows size
  model-gNNN.safetensors  the backend's fitted parameters after generation NNN
  blocks/NAME.npz     the world's blocks (items, luck, labels, detector flags), written once:
                      items never change (a block is saved only once its flags are complete)
  rows.jsonl          one line of metric rows per finished generation, append-only
state.json is replaced atomically last, so a crash at any point leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from audit.atomic import open_in_place, write_atomically
from loops.world import Block


class CheckpointMismatch(Exception):
    """--resume found a checkpoint written with other settings."""


class Checkpoint:
    def __init__(self, folder, config: dict):
        self.folder, self.config = Path(folder), config
        self.blocks_dir = self.folder / "blocks"

    def load(self) -> dict | None:
        """The saved state (with `rows`, `blocks` and `model` loaded), or None when there is none."""
        state_path = self.folder / "state.json"
        if not state_path.is_file():
            return None
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state["config"] != self.config:
            raise CheckpointMismatch(
                f"{self.folder} holds a run with other settings; resume with the same options, "
                "or run into another --out without --resume"
            )
        committed = (self.folder / "rows.jsonl").read_bytes()[: state["rows_bytes"]]
        state["rows"] = [row for line in committed.decode("utf-8").splitlines() for row in json.loads(line)]
        state["blocks"] = [self._load_block(meta) for meta in state["blocks"]]
        state["model"] = load_file(str(self.folder / state["model"]))
        return state

    def save(self, generation: int, rows: list[dict], streams: dict, blocks: list[Block], model: dict) -> None:
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        for block in blocks:
            path = self.blocks_dir / f"{block.name}.npz"
            if not path.exists():
                write_atomically(path, lambda p, b=block: np.savez(p, **b.arrays()))
        model_name = f"model-g{generation:03d}.safetensors"
        tensors = {name: np.ascontiguousarray(value) for name, value in model.items()}
        write_atomically(self.folder / model_name, lambda p: save_file(tensors, str(p)))
        state = {
            "config": self.config,
            "generation": generation,
            "streams": streams,
            "blocks": [b.meta() for b in blocks],
            "model": model_name,
            "rows_bytes": self._append_rows(rows),
        }
        write_atomically(self.folder / "state.json", lambda p: p.write_text(json.dumps(state), encoding="utf-8"))
        self._remove_stale(model_name, {b.name for b in blocks})

    def _append_rows(self, rows: list[dict]) -> int:
        """Append one line; a line left by a crash after the last commit is cut off first."""
        path = self.folder / "rows.jsonl"
        state_path = self.folder / "state.json"
        committed = json.loads(state_path.read_text(encoding="utf-8"))["rows_bytes"] if state_path.exists() else 0
        with os.fdopen(open_in_place(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "ab") as f:
            f.truncate(committed)
            f.write((json.dumps(rows, allow_nan=False) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
            return f.tell()

    def _load_block(self, meta: dict) -> Block:
        with np.load(self.blocks_dir / f"{meta['name']}.npz", allow_pickle=False) as saved:
            return Block.from_arrays(meta, {name: saved[name] for name in saved.files})

    def _remove_stale(self, model_name: str, block_names: set[str]) -> None:
        for path in self.folder.glob("model-g*.safetensors"):
            if path.name != model_name:
                path.unlink()
        for path in self.blocks_dir.glob("*.npz"):
            if path.stem not in block_names:
                path.unlink()
