"""Does a feature space make FID and precision/recall/density/coverage mean what they claim?

`validate_metrics` scores image sets with known defects against a real reference set, in one
feature space, and `check` says, metric by metric, whether each moved the way it must:

| set | what it is | must happen |
|---|---|---|
| real | other real images (the floor: what a perfect generator scores) | precision, recall, coverage >= 0.5 |
| noise | uniform pixel noise | FID far above the floor; precision, density, coverage near 0 |
| repeated | one real image, repeated | FID far above the floor; recall, coverage near 0 |
| classes-dropped | real images of half the classes only | FID above the floor; recall, coverage well below it |
| blur | real images, Gaussian blur (sigma 1 pixel) | FID far above the floor |

A metric that fails any of its rows in a feature space measures something else there, and a
study should not report it in that space (examples/mnist_loops.md, "Which metrics mean anything").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loops.metrics.measures import fid, prdc

DEGRADATIONS = ("real", "noise", "repeated", "classes-dropped", "blur")
METRICS = ("fid", "precision", "recall", "density", "coverage")
BLUR_SIGMA = 1.0
NEAR_ZERO = 0.1      # "near 0" for precision/recall/density/coverage
WELL_BELOW = 0.75    # "well below the floor": under this share of the real-vs-real value
FAR_ABOVE = 5.0      # FID "far above the floor": this many times the real-vs-real FID
ABOVE = 2.0          # FID "above the floor"


@dataclass(frozen=True)
class Expectation:
    degradation: str
    metric: str
    rule: str  # "far-above-floor", "above-floor", "near-zero", "well-below-floor", "at-least-half"

    def holds(self, value: float, floor: float) -> bool:
        return {
            "far-above-floor": lambda: value > FAR_ABOVE * floor,
            "above-floor": lambda: value > ABOVE * floor,
            "near-zero": lambda: value < NEAR_ZERO,
            "well-below-floor": lambda: value < WELL_BELOW * floor,
            "at-least-half": lambda: value >= 0.5,
        }[self.rule]()


EXPECTATIONS = (
    Expectation("real", "precision", "at-least-half"),
    Expectation("real", "recall", "at-least-half"),
    Expectation("real", "coverage", "at-least-half"),
    Expectation("real", "density", "at-least-half"),
    Expectation("noise", "fid", "far-above-floor"),
    Expectation("noise", "precision", "near-zero"),
    Expectation("noise", "density", "near-zero"),
    Expectation("noise", "coverage", "near-zero"),
    Expectation("repeated", "fid", "far-above-floor"),
    Expectation("repeated", "recall", "near-zero"),
    Expectation("repeated", "coverage", "near-zero"),
    Expectation("classes-dropped", "fid", "above-floor"),
    Expectation("classes-dropped", "recall", "well-below-floor"),
    Expectation("classes-dropped", "coverage", "well-below-floor"),
    Expectation("blur", "fid", "far-above-floor"),
)


def degraded_sets(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator,
                  blur_sigma: float = BLUR_SIGMA) -> dict[str, np.ndarray]:
    """The DEGRADATIONS as uint8 (n, H, W) sets drawn from real `images` (not the reference set)."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected grey uint8 images (N, H, W), got {images.dtype} {images.shape}")
    classes = np.unique(labels)
    kept = classes[: max(1, len(classes) // 2)]
    some_classes = np.flatnonzero(np.isin(labels, kept))
    return {
        "real": images[rng.choice(len(images), n, replace=False)],
        "noise": rng.integers(0, 256, (n, *images.shape[1:]), dtype=np.uint8),
        "repeated": np.repeat(images[rng.integers(len(images))][None], n, axis=0),
        "classes-dropped": images[rng.choice(some_classes, n, replace=len(some_classes) < n)],
        "blur": blur(images[rng.choice(len(images), n, replace=False)], blur_sigma),
    }


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each grey uint8 image (PIL's GaussianBlur, radius = sigma)."""
    from PIL import Image, ImageFilter

    return np.stack([np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma))) for image in images])


def validate_metrics(features, reference: np.ndarray, images: np.ndarray, labels: np.ndarray, *, n: int | None = None,
                     k: int = 5, seed: int = 0) -> dict[str, dict[str, float]]:
    """{degradation: {metric: value}} of each degraded set against `reference` (real images never in
    `images`) in the space `features` (a callable images -> (N, D) features)."""
    n = n or len(reference)
    sets = degraded_sets(images, labels, n, np.random.default_rng(seed))
    real = features(reference)
    table = {}
    for name, fake_images in sets.items():
        fake = features(fake_images)
        table[name] = {"fid": fid(fake, real), **prdc(real, fake, k)}
    return table


def check(table: dict[str, dict[str, float]]) -> list[dict]:
    """Each expectation with its value, the real-vs-real floor and whether it holds."""
    floor = table["real"]
    return [{"degradation": e.degradation, "metric": e.metric, "rule": e.rule,
             "value": table[e.degradation][e.metric], "floor": floor[e.metric],
             "ok": e.holds(table[e.degradation][e.metric], floor[e.metric])} for e in EXPECTATIONS]


def passing_metrics(table: dict[str, dict[str, float]]) -> list[str]:
    """The metrics whose every expectation holds: those worth reporting in this feature space."""
    failed = {row["metric"] for row in check(table) if not row["ok"]}
    return [m for m in METRICS if m not in failed]


def markdown(tables: dict[str, dict[str, dict[str, float]]]) -> str:
    """One markdown table: a row per (feature space, degradation); a failed expectation is marked ✗."""
    lines = ["| features | set | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for space, table in tables.items():
        failed = {(r["degradation"], r["metric"]) for r in check(table) if not r["ok"]}
        for name in DEGRADATIONS:
            cells = [(f"{table[name][m]:.3g}" if m == "fid" else f"{table[name][m]:.3f}")
                     + (" ✗" if (name, m) in failed else "") for m in METRICS]
            lines.append(f"| {space} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
