"""CLIP-like image towers exported to ONNX, run with onnxruntime.

Specs: `onnx=/path/model.onnx` (any image tower: one 4-d image input, N x 3 x S x S, and an
embedding output N x D) or `onnx:NAME` (a model installed in the model cache by
`audit models pull NAME`). The input's name and size and the output are read from the model:
the output named `image_embeds` (or `embeds`), else the first 2-d output. Pixels get CLIP's
normalisation; fp32 and int8 (quantised) models run alike.

An encoder is identified by its file's sha256 (`encoder_id`), not by its path or name: an fp32
and an int8 build of the same network give different vectors, so caches, banks and probes record
the hash and refuse vectors of any other file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

import audit.threads as threads
from audit.embedding.embedder import CLIP_MEAN, CLIP_STD, IMAGE_SIZE, WeightsMissing
from audit.embedding.encoders import installed_encoder, sha256_of_file

PREFIX_PATH = "onnx="
PREFIX_NAME = "onnx:"
OUTPUT_NAMES = ("image_embeds", "embeds", "embeddings", "image_features")


def is_onnx_spec(spec: str | None) -> bool:
    return bool(spec) and (spec.startswith(PREFIX_PATH) or spec.startswith(PREFIX_NAME))


def onnx_file(spec: str) -> Path:
    """The model file a spec names; WeightsMissing with what to do when it is not there."""
    if spec.startswith(PREFIX_NAME):
        return installed_encoder(spec[len(PREFIX_NAME) :])
    path = Path(spec[len(PREFIX_PATH) :]).expanduser()
    if not path.is_file():
        raise WeightsMissing(f"ONNX model file not found: {path}")
    return path


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of_file(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, computed once per (path, size, modification time) in a process."""
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def encoder_id(spec: str) -> str:
    """What makes two embeddings comparable: `sha256:<hex>` of an ONNX encoder's file, else the spec."""
    return f"sha256:{file_sha256(onnx_file(spec))}" if is_onnx_spec(spec) else spec


class OnnxEmbedder:
    """`embed(prepared)` maps n x 224 x 224 x 3 uint8 to n x dim float32 (raw, not normalised), like `Embedder`."""

    is_random = False

    def __init__(self, spec: str, device: str | None = None):
        self.spec = spec
        self.path = onnx_file(spec)
        self.encoder_id = encoder_id(spec)
        self.session = _session(self.path, self.encoder_id, (device or "").startswith("cuda"))
        self.device = "cuda" if self.session.get_providers()[0].startswith("CUDA") else "cpu"
        self.input_name, self.size = _image_input(self.session, self.path)
        self.output_name = _embedding_output(self.session, self.path)
        self._mean = np.array(CLIP_MEAN, np.float32).reshape(1, 3, 1, 1)
        self._std = np.array(CLIP_STD, np.float32).reshape(1, 3, 1, 1)
        self.dim = int(self.embed(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)).shape[1])

    def embed(self, prepared: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        x = self.to_input(prepared)
        (vectors,) = self.session.run([self.output_name], {self.input_name: x})
        return np.asarray(vectors, dtype=np.float32).reshape(len(x), -1)

    def to_input(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """n x 3 x S x S float32, normalised as CLIP was trained (224-pixel crops resized when S differs)."""
        batch = np.stack(images) if not isinstance(images, np.ndarray) else images
        if batch.shape[1] != self.size:
            batch = np.stack(
                [np.asarray(Image.fromarray(im).resize((self.size, self.size), Image.BICUBIC)) for im in batch]
            )
        x = batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return (x - self._mean) / self._std


_SESSIONS: dict[tuple, object] = {}  # (encoder_id, cuda) -> the session last built: `bank add` then `scan` share it


def _session(path: Path, identity: str, cuda: bool):
    """An onnxruntime session of the model (one per process and encoder), on CUDA when asked and available."""
    import onnxruntime as ort

    key = (identity, cuda)
    if key not in _SESSIONS:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads.cores()  # a large model's long batches use every core
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave decoders be
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for unusable files
            raise WeightsMissing(f"cannot load ONNX model {path}: {type(e).__name__}: {e}") from None
        _SESSIONS.clear()
        _SESSIONS[key] = session
    return _SESSIONS[key]


def _image_input(session, path: Path) -> tuple[str, int]:
    images = [i for i in session.get_inputs() if len(i.shape) == 4]
    if len(images) != 1 or len(session.get_inputs()) != 1:
        raise WeightsMissing(
            f"{path} is not an image tower: it needs exactly one N x 3 x S x S input, "
            f"found {[(i.name, i.shape) for i in session.get_inputs()]}"
        )
    size = images[0].shape[2]
    return images[0].name, size if isinstance(size, int) and size > 0 else IMAGE_SIZE


def _embedding_output(session, path: Path) -> str:
    outputs = [o for o in session.get_outputs() if len(o.shape) == 2]
    named = [o for o in outputs if o.name in OUTPUT_NAMES]
    if not (named or outputs):
        raise WeightsMissing(
            f"{path} has no N x D embedding output: {[(o.name, o.shape) for o in session.get_outputs()]}"
        )
    return (named or outputs)[0].name
