"""A small CNN classifier for MNIST-like images, used as a feature extractor and a judge.

Feature spaces (`layer`): "conv", the pooled last convolution block (32 x 7 x 7 = 1568-d), is the
one where FID and all of precision/recall/density/coverage move the right way on known
degradations (loops/metrics/validate.py; examples/mnist_loops.md has the table); "penultimate"
(128-d, after the last ReLU) maps uniform noise into the real digits' region (precision 1.0,
density 0.9 for noise) and is kept only for comparison. Its predictions give the
classifier-based metrics of generated images (Martínez et al.): entropy of the predicted-class
histogram, its KL divergence from the real class histogram, and the mean confidence.
Torch runs single-threaded here (loops/threads.py says why).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from loops.threads import torch_threads

FEATURE_DIM = 128
CONV_DIM = 32 * 7 * 7
LAYERS = ("conv", "penultimate")


class SmallCNN(nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, FEATURE_DIM),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ClassifierFeatures:
    """Feature extractor (`__call__`) and classifier metrics for grey images (N, H, W) or (N, 1, H, W),
    uint8 in 0..255 or float in 0..1."""

    name = "cnn"

    def __init__(self, net: SmallCNN, class_histogram: np.ndarray, batch_size: int = 512, layer: str = "penultimate"):
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
        self.net, self.class_histogram, self.batch_size, self.layer = net.eval(), class_histogram, batch_size, layer

    def at_layer(self, layer: str) -> ClassifierFeatures:
        """The same trained network, giving features of another layer."""
        return ClassifierFeatures(self.net, self.class_histogram, self.batch_size, layer)

    @classmethod
    def train(
        cls,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        epochs: int = 3,
        batch_size: int = 64,
        lr: float = 1e-2,
        seed: int = 0,
        layer: str = "penultimate",
    ) -> ClassifierFeatures:
        """Train on the real training split (AdamW, one-cycle learning rate)."""
        labels = np.asarray(labels, dtype=np.int64)
        classes = int(labels.max()) + 1
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = SmallCNN(classes)
        x, y = _tensor(images), torch.from_numpy(labels)
        steps = epochs * -(-len(x) // batch_size)
        optimiser = torch.optim.AdamW(net.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
        net.train()
        with torch_threads(1):
            for _ in range(epochs):
                for batch in torch.randperm(len(x), generator=generator).split(batch_size):
                    loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    schedule.step()
        return cls(net, np.bincount(labels, minlength=classes) / len(labels), layer=layer)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        body = self.net.body if self.layer == "penultimate" else self.net.body[:-3]  # conv: before Linear+ReLU
        return self._run(images, lambda x: body(x).flatten(1)).astype(np.float64)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, lambda x: self.net(x).softmax(dim=1)).astype(np.float64)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float((self.probabilities(images).argmax(1) == np.asarray(labels)).mean())

    def class_metrics(self, images: np.ndarray) -> dict[str, float]:
        """Entropy (nats) of the predicted-class histogram, KL(histogram || real class histogram),
        and the mean confidence (top softmax probability)."""
        p = self.probabilities(images)
        histogram = np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
        nonzero = histogram > 0
        return {
            "class_entropy": float(-(histogram[nonzero] * np.log(histogram[nonzero])).sum()),
            "class_kl": float((histogram[nonzero] * np.log(histogram[nonzero] / self.class_histogram[nonzero])).sum()),
            "mean_confidence": float(p.max(1).mean()),
        }

    def _run(self, images: np.ndarray, head) -> np.ndarray:
        x = _tensor(images)
        with torch.no_grad(), torch_threads(1):
            return torch.cat([head(part) for part in x.split(self.batch_size)]).numpy()


def _tensor(images: np.ndarray) -> torch.Tensor:
    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    x = torch.from_numpy(images.astype(np.float32) / scale)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected grey images (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}")
    return x
