"""Which embedder a spec names, and what identifies its vectors.

`onnx=/path/model.onnx` and `onnx:NAME` run in onnxruntime (onnx.py); `random`, `random:MODEL`,
`MODEL/TAG` and `MODEL=/path/weights` are open_clip models in torch (embedder.py). Vectors of two
specs are comparable only when their `encoder_id`s are equal: for an ONNX encoder, its file's sha256.
The default is the real CLIP encoder that installs offline (`audit models pull clip-vit-b16-int8`).
"""

from __future__ import annotations

from audit.embedding.embedder import RANDOM_SPEC, Embedder, EmbedderSpec, resolve_weights
from audit.embedding.onnx import OnnxEmbedder, encoder_id, is_onnx_spec, onnx_file

__all__ = ["DEFAULT_SPEC", "load_embedder", "check_available", "is_random", "encoder_id", "same_encoder"]

DEFAULT_SPEC = "onnx:clip-vit-b16-int8"  # the scan's embedder when neither probe nor bank names one


def load_embedder(spec: str, device: str | None = None, seed: int = 0):
    """The embedder a spec names; WeightsMissing with what to do when its model is not on this machine."""
    if is_onnx_spec(spec):
        return OnnxEmbedder(spec, device=device)
    return Embedder(spec, device=device, seed=seed)


def check_available(spec: str) -> None:
    """WeightsMissing (or ValueError for a malformed spec) unless the spec's model can be loaded now."""
    if is_onnx_spec(spec):
        onnx_file(spec)
        return
    parsed = EmbedderSpec.parse(spec)
    if not parsed.random:
        resolve_weights(parsed)


def is_random(spec: str | None) -> bool:
    """A random-initialised embedder: its vectors are meaningless and must never make evidence."""
    return bool(spec) and (spec == RANDOM_SPEC or spec.startswith(RANDOM_SPEC + ":"))


def same_encoder(recorded_spec: str, recorded_id: str | None, spec: str) -> bool:
    """Whether vectors of `spec` belong with vectors recorded as (`recorded_spec`, `recorded_id`);
    a record without an id (older files) compares specs."""
    if recorded_id is None:
        return recorded_spec == spec
    try:
        return encoder_id(spec) == recorded_id
    except Exception:  # noqa: BLE001 - a spec whose file is missing cannot be shown to match
        return False
