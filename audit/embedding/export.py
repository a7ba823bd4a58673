"""`audit models export-onnx SPEC`: an open_clip image tower exported to ONNX for onnxruntime.

The model is built as the scan builds it (weights from the cache or an explicit file; `random:MODEL`
for a random-initialised one), wrapped so its one input is `pixel_values` (N x 3 x S x S, CLIP-
normalised) and its one output `image_embeds` (N x D), and exported in fp32 with a dynamic batch
axis; `int8=True` adds onnxruntime's dynamic INT8 quantisation (smaller and faster on CPUs, but its
vectors differ from fp32's, so a probe or bank must be built with the file it is used with).
By default the file goes to the model cache as `onnx:NAME`.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import torch

from audit.embedding.embedder import Embedder, EmbedderSpec
from audit.embedding.encoders import MODEL_FILE, encoder_folder

OPSET = 17


def default_name(spec: str, int8: bool) -> str:
    """A model-cache name for an exported spec: `ViT-B-16/openai` -> `ViT-B-16-openai` (+ `-int8`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-") + ("-int8" if int8 else "")


def export_onnx(spec: str, out: str | Path | None = None, *, int8: bool = False) -> Path:
    """Export the image tower of an open_clip spec; returns the .onnx file written."""
    EmbedderSpec.parse(spec)  # a malformed spec is a ValueError before anything is built
    model = Embedder(spec, device="cpu").model
    out = Path(out) if out else encoder_folder(default_name(spec, int8)) / MODEL_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    size = _image_size(model)
    tower = _ImageTower(model).eval()
    example = torch.zeros(1, 3, size, size)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks that are constant for this model
        fp32 = Path(tmp) / "fp32.onnx" if int8 else out
        torch.onnx.export(
            tower,
            (example,),
            str(fp32),
            input_names=["pixel_values"],
            output_names=["image_embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    return out


def _image_size(model) -> int:
    size = getattr(model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


class _ImageTower(torch.nn.Module):
    """The CLIP model's image side alone: pixel_values -> image_embeds."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values):
        return self.clip.encode_image(pixel_values)
