"""The embedding engine: open_clip image embeddings, batched, on CUDA (fp16) or CPU.

A spec string names the model and its weights:
  `ViT-B-32/openai`          open_clip model + pretrained tag (weights from the HF / open_clip cache,
                             downloaded when the Hub is reachable)
  `ViT-L-14=/path/file`      open_clip model + an explicit local weights file (.safetensors or .bin)
  `random`                   a tiny random-initialised model, for tests only
  `random:ViT-B-32`          a named architecture, random-initialised (for speed benchmarks)
Random models are meaningless for detection; `is_random` says so and every output carries it.

Geometric preprocessing (`prepare_pixels`) is a pure function run in the decode workers, so it
overlaps with inference; the engine only stacks, normalises and runs the model (`to_input`: one copy
into a reused host buffer, pinned on CUDA and copied without blocking; the normalisation in place).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

import audit.threads as threads

OPEN_CLIP_DEFAULT = "ViT-B-32/openai"  # the open_clip model a bare Embedder() loads
RANDOM_SPEC = "random"
RANDOM_NOTE = "random-initialised embedder: embeddings are MEANINGLESS for detection (testing only)"
IMAGE_SIZE = 224
PREPROCESS_MODES = ("clip", "univfd")  # open_clip's resize+centre-crop, or UnivFD's centre crop without resize
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class WeightsMissing(Exception):
    """The weights a spec names are not on this machine and cannot be downloaded now."""


@dataclass(frozen=True)
class EmbedderSpec:
    model: str
    tag: str | None = None
    path: str | None = None
    random: bool = False

    @classmethod
    def parse(cls, spec: str) -> EmbedderSpec:
        if spec == RANDOM_SPEC:
            return cls(model="tiny", random=True)
        if spec.startswith("random:"):
            return cls(model=spec.split(":", 1)[1], random=True)
        if "=" in spec:
            model, path = spec.split("=", 1)
            return cls(model=model, path=path)
        model, sep, tag = spec.partition("/")
        if not (sep and model and tag):
            raise ValueError(
                f"bad embedder spec {spec!r}: use MODEL/TAG (e.g. {OPEN_CLIP_DEFAULT}), MODEL=/path/weights, "
                "random or random:MODEL"
            )
        return cls(model=model, tag=tag)


def prepare_pixels(rgb: np.ndarray, mode: str = "clip", size: int = IMAGE_SIZE) -> np.ndarray:
    """uint8 size x size x 3 model input: resize shortest side + centre crop ("clip"), or a
    centre crop without resizing, zero-padded when smaller ("univfd", as UnivFD evaluates)."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocessing {mode!r}; choose from {PREPROCESS_MODES}")
    image = Image.fromarray(rgb)
    if mode == "clip":
        scale = size / min(image.size)
        image = image.resize(
            (max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC
        )
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def resolve_weights(spec: EmbedderSpec) -> str:
    """A local weights file for `spec`, downloading into the HF cache when the Hub is reachable."""
    if spec.path:
        if not os.path.isfile(spec.path):
            raise WeightsMissing(f"weights file not found: {spec.path}")
        return spec.path
    import open_clip
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cfg = open_clip.get_pretrained_cfg(spec.model, spec.tag)
    repo = (cfg or {}).get("hf_hub", "").rstrip("/")
    if not repo:
        raise WeightsMissing(
            f"open_clip has no pretrained weights {spec.model}/{spec.tag}; "
            f"known tags: {open_clip.list_pretrained_tags_by_model(spec.model)}"
        )
    for filename in WEIGHT_FILES:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return cached
    from audit.hub import hub_reachable

    if hub_reachable():
        for filename in WEIGHT_FILES:
            try:
                return hf_hub_download(repo, filename)
            except Exception:  # noqa: BLE001 - try the next file name, then report
                continue
    raise WeightsMissing(
        f"CLIP weights for {spec.model}/{spec.tag} are not on this machine: {WEIGHT_FILES[1]} (or "
        f"{WEIGHT_FILES[0]}) of Hugging Face repo {repo} is not in the HF cache, and the Hub is not reachable. "
        f"Provide them with `huggingface-cli download {repo} {WEIGHT_FILES[1]}` on a machine with internet "
        f"(then copy ~/.cache/huggingface), or pass --embedder {spec.model}=/path/to/{WEIGHT_FILES[1]}."
    )


def _tiny_random_clip():
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=32, image_size=IMAGE_SIZE)
    text = CLIPTextCfg(context_length=16, vocab_size=1000, width=32, heads=2, layers=1)
    return CLIP(embed_dim=64, vision_cfg=vision, text_cfg=text)


_BUILT: dict[
    tuple, tuple
] = {}  # (spec, device, seed) -> (the model last built, torch's RNG state after it); inference only, so shared


class Embedder:
    """Loads the model once; `embed(prepared)` maps n x 224 x 224 x 3 uint8 to n x dim float32 (raw, not normalised)."""

    def __init__(self, spec: str = OPEN_CLIP_DEFAULT, device: str | None = None, seed: int = 0):
        import torch

        self.spec = spec
        parsed = EmbedderSpec.parse(spec)
        self.is_random = parsed.random
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        key = (spec, self.device, seed)
        torch.manual_seed(seed)
        if key not in _BUILT:  # one model per process: `bank add` then `scan` in one process build it once
            _BUILT.clear()
            _BUILT[key] = (self._build(parsed).to(self.device, self.dtype).eval(), torch.get_rng_state())
        self.model, after_build = _BUILT[key]
        torch.set_rng_state(after_build)  # the random stream continues as if built here
        self._parameters = sum(p.numel() for p in self.model.parameters())
        self._mean = torch.tensor(CLIP_MEAN, device=self.device, dtype=self.dtype).view(1, 3, 1, 1)
        self._std = torch.tensor(CLIP_STD, device=self.device, dtype=self.dtype).view(1, 3, 1, 1)
        self._cuda = self.device.startswith("cuda")
        self._staging = None  # the host buffer each batch is stacked into (pinned on CUDA), grown on demand
        self._copied = None  # CUDA event: the last copy out of the staging buffer has finished
        self._staging_lock = threading.Lock()
        self.dim = int(getattr(self.model.visual, "output_dim", 0)) or int(
            self.embed(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)).shape[1]
        )

    @staticmethod
    def _build(parsed: EmbedderSpec):
        import open_clip

        if parsed.random:
            if parsed.model == "tiny":
                return _tiny_random_clip()
            return open_clip.create_model(parsed.model, pretrained=None)
        return open_clip.create_model(parsed.model, pretrained=resolve_weights(parsed))

    def embed(self, prepared: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """n x dim raw embeddings of n prepared images (`to_input`).

        On the CPU, a small model (under audit.threads.SMALL_PROBLEM parameters) runs on the threads the
        scan's busy workers leave free: its batches are short bursts, where threads beside busy workers
        cost more than they gain (a batch of 16 through the tiny model: 671 ms on 2 threads against 120 ms
        on 1). A larger model's long batches use every core, as measured (ViT-B/32 on 2 cores beside 2
        decode workers: 13.4 img/s on both cores, 11.6 on the workers' share)."""
        import torch

        small = threads.small(self._parameters)
        cpu_threads = (
            (threads.main_share() if small else threads.cores()) if self.device == "cpu" else torch.get_num_threads()
        )
        with torch.inference_mode(), threads.limited(cpu_threads, faiss=False, blas=False):
            return self.model.encode_image(self.to_input(prepared)).float().cpu().numpy()

    def to_input(self, images: np.ndarray | Sequence[np.ndarray]):
        """The model's input on the device, n x 3 x 224 x 224 in the model's dtype, normalised as CLIP
        was trained, from n images of 224 x 224 x 3 uint8 (one array, or a sequence of arrays as the
        decode workers hand them over, stacked once, straight into the buffer the copy reads).

        On CUDA the buffer is pinned memory, copied to the GPU without blocking. The conversion and the
        normalisation run in place on the device, in torchvision's order (ToTensor, Normalize): divide by
        255, subtract the mean, divide by the standard deviation."""
        import torch

        with self._staging_lock:
            if isinstance(images, np.ndarray) and not self._cuda:
                x = torch.from_numpy(np.ascontiguousarray(images))  # a ready batch needs no copy on the CPU
            else:
                x = self._stage(images)
                if self._cuda:
                    x = x.to(self.device, non_blocking=True)
                    self._copied = torch.cuda.Event()
                    self._copied.record(torch.cuda.current_stream(x.device))
            x = x.permute(0, 3, 1, 2).to(self.dtype)  # a new tensor: the staging buffer is free once copied
        return x.div_(255.0).sub_(self._mean).div_(self._std)

    def _stage(self, images: np.ndarray | Sequence[np.ndarray]):
        """`images` stacked into the reused host buffer (grown when a batch is larger than any before)."""
        import torch

        n = len(images)
        if self._copied is not None:
            self._copied.synchronize()  # the GPU may still be reading the previous batch from the buffer
        if self._staging is None or self._staging.shape[0] < n:
            shape = (n, IMAGE_SIZE, IMAGE_SIZE, 3)
            try:
                self._staging = torch.empty(shape, dtype=torch.uint8, pin_memory=self._cuda)
            except RuntimeError:  # pinned memory refused (locked-memory limits): pageable, copied synchronously
                self._staging = torch.empty(shape, dtype=torch.uint8)
        buffer = self._staging[:n]
        if isinstance(images, np.ndarray):
            np.copyto(buffer.numpy(), images)
        else:
            np.stack(images, out=buffer.numpy())
        return buffer


def normalise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, norms); zero vectors stay zero."""
    norms = np.linalg.norm(vectors, axis=1)
    return (vectors / np.maximum(norms, 1e-12)[:, None]).astype(np.float32), norms.astype(np.float32)
