"""The CLIP-feature classifier: a linear probe on image embeddings ("UnivFD-style").

A probe is a folder: `probe.safetensors` (weight, bias) and `probe.json` (embedder spec and
`encoder_id`, so it only ever scores vectors of that encoder file; preprocessing, whether inputs are L2-normalised, decision threshold, training metrics).
Probes trained by `audit calibrate` use normalised embeddings and logistic regression, so
scores are calibrated probabilities. UnivFD's published head works on raw ViT-L/14
embeddings; `convert_univfd` loads it safely (weights_only) into the same format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audit.atomic import write_atomically
from audit.detectors.base import NEEDS_EMBEDDINGS, NO_EVIDENCE, REAL, SYNTHETIC, EmbeddedItem, Signal, not_applicable
from audit.side_files import read_json_object

UNIVFD_EMBEDDER = "ViT-L-14/openai"
UNIVFD_URL = (
    "https://github.com/WisconsinAIVision/UniversalFakeDetect/raw/"
    "76a0e3e60a8a06458707a625d269ba815a2e5919/pretrained_weights/fc_weights.pth"
)


class ProbeError(Exception):
    """A probe folder or weights file that cannot be used."""


@dataclass
class LinearProbe:
    weight: np.ndarray  # (dim,)
    bias: float
    embedder: str
    preprocess: str = "clip"
    normalized_inputs: bool = True
    threshold: float = 0.5
    metrics: dict = field(default_factory=dict)
    source: str = "audit calibrate"
    encoder_id: str | None = None  # the embedder's identity (an ONNX encoder's file sha256); None in older probes

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """P(synthetic) for raw (unnormalised) embeddings, n x dim."""
        x = raw.astype(np.float64)
        if self.normalized_inputs:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        logits = x @ self.weight.astype(np.float64) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight.astype(np.float32), "bias": np.array([self.bias], np.float32)}
        write_atomically(folder / "probe.safetensors", lambda p: save_file(tensors, str(p)))
        sidecar = {k: v for k, v in asdict(self).items() if k not in ("weight", "bias")}
        text = json.dumps({**sidecar, "dim": int(self.weight.shape[0])}, indent=2) + "\n"
        write_atomically(folder / "probe.json", lambda p: p.write_text(text))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> LinearProbe:
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            tensors = load_file(str(folder / "probe.safetensors"))
            sidecar = read_json_object(folder / "probe.json")  # regular file, size and nesting limits
        except (OSError, ValueError) as e:  # SideFileError is a ValueError
            raise ProbeError(f"cannot load probe from {folder}: {e}") from None
        sidecar.pop("dim", None)
        return cls(weight=tensors["weight"].reshape(-1), bias=float(tensors["bias"].reshape(-1)[0]), **sidecar)


def train_probe(
    embeddings: np.ndarray, labels: np.ndarray, embedder: str, preprocess: str = "clip", seed: int = 0
) -> LinearProbe:
    """Logistic regression (C chosen by cross-validated log-loss, so probabilities stay calibrated) on
    L2-normalised embeddings; labels 1 = synthetic. The probe records the embedder's encoder_id."""
    import warnings

    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    from audit.embedding.backends import encoder_id

    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels, dtype=int)
    folds = min(5, int(np.bincount(labels, minlength=2).min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's parameter-default transitions
        if folds >= 2:
            model = LogisticRegressionCV(Cs=10, cv=folds, scoring="neg_log_loss", max_iter=2000, random_state=seed)
            model = model.fit(x, labels)
        else:
            model = LogisticRegression(max_iter=2000).fit(x, labels)
    train_accuracy = float((model.predict(x) == labels).mean())  # model.score would be the CV scoring (log-loss)
    return LinearProbe(
        weight=model.coef_.reshape(-1),
        bias=float(model.intercept_[0]),
        embedder=embedder,
        preprocess=preprocess,
        metrics={"train_accuracy": train_accuracy, "train_count": int(len(labels))},
        encoder_id=encoder_id(embedder),
    )


def convert_univfd(path: str | Path) -> LinearProbe:
    """UnivFD's published `fc_weights.pth` (a CUDA-saved state dict) as a probe, loaded with weights_only."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # harmless for weights_only
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad or unsafe files
        raise ProbeError(f"cannot load {path} safely as a state dict: {type(e).__name__}: {e}") from None
    weight, bias = (state.get("weight"), state.get("bias")) if isinstance(state, dict) else (None, None)
    if weight is None or bias is None or tuple(weight.shape) != (1, 768) or bias.numel() != 1:
        raise ProbeError(f"{path} is not UnivFD's 768->1 linear head (found {type(state).__name__})")
    return LinearProbe(
        weight=weight.float().numpy().reshape(-1),
        bias=float(bias.float().item()),
        embedder=UNIVFD_EMBEDDER,
        preprocess="univfd",
        normalized_inputs=False,
        source=f"UnivFD (Ojha et al. 2023), {UNIVFD_URL}",
    )


class ProbeDetector:
    name = "probe"
    needs = frozenset({NEEDS_EMBEDDINGS})
    hard_evidence = False

    def __init__(self, probe: LinearProbe):
        self.probe = probe
        self.embedder_spec = probe.embedder
        self.encoder_id = probe.encoder_id
        self.preprocess = probe.preprocess
        # Below the threshold a probe trained by `audit calibrate` (calibrated probabilities, a real
        # embedder) says real; any other probe only says it found no evidence.
        self.says_real = probe.source == "audit calibrate" and not probe.embedder.startswith("random")

    def detect(self, batch: Sequence[EmbeddedItem]) -> list[Signal]:
        usable = [i for i, item in enumerate(batch) if item.embedding is not None]
        signals = [not_applicable("no embedding") for _ in batch]
        if not usable:
            return signals
        raw = np.stack([batch[i].embedding * (batch[i].norm or 1.0) for i in usable])
        for i, p in zip(usable, self.probe.probabilities(raw)):
            decision = SYNTHETIC if p >= self.probe.threshold else REAL if self.says_real else NO_EVIDENCE
            signals[i] = Signal(
                score=float(p), decision=decision, evidence=f"probe {p:.3f} (threshold {self.probe.threshold:g})"
            )
        return signals
