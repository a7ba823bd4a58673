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
NEAR_ZERO = 0.1  # "near 0" for precision/recall/density/coverage
WELL_BELOW = 0.75  # "well below the floor": under this share of the real-vs-real value
FAR_ABOVE = 5.0  # FID "far above the floor": this many times the real-vs-real FID
ABOVE = 2.0  # FID "above the floor"


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


def degraded_sets(
    images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator, blur_sigma: float = BLUR_SIGMA
) -> dict[str, np.ndarray]:
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


def validate_metrics(
    features,
    reference: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    n: int | None = None,
    k: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
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
    return [
        {
            "degradation": e.degradation,
            "metric": e.metric,
            "rule": e.rule,
            "value": table[e.degradation][e.metric],
            "floor": floor[e.metric],
            "ok": e.holds(table[e.degradation][e.metric], floor[e.metric]),
        }
        for e in EXPECTATIONS
    ]


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
            cells = [
                (f"{table[name][m]:.3g}" if m == "fid" else f"{table[name][m]:.3f}")
                + (" ✗" if (name, m) in failed else "")
                for m in METRICS
            ]
            lines.append(f"| {space} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- severity ramps

# each ramp degrades real images by a growing amount; level 0 is the real-vs-real floor
RAMPS = {
    "noise share": (0.0, 0.1, 0.25, 0.5, 1.0),  # share of the images replaced by uniform noise
    "blur radius": (0.0, 0.5, 1.0, 1.5, 2.0),  # Gaussian blur radius in pixels
    "speckle share": (0.0, 0.01, 0.03, 0.1, 0.3),  # share of each image's pixels set to white
    "classes dropped": (0, 2, 5, 8),  # classes left out of the set
}
# what each metric must do as the severity grows (the rank correlation with the level)
RAMP_EXPECTATIONS = {
    "noise share": {"fid": "up", "precision": "down", "density": "down"},
    "blur radius": {"fid": "up", "recall": "down", "coverage": "down"},
    "speckle share": {"fid": "up"},
    "classes dropped": {"fid": "up", "recall": "down", "coverage": "down"},
}
STEP_TOLERANCE = 0.05  # a step the wrong way smaller than this share of the metric's range is noise


def ramp_set(
    images: np.ndarray, labels: np.ndarray, ramp: str, level: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n real images degraded by one ramp at one level (uint8, (n, H, W))."""
    if ramp == "classes dropped":
        kept = np.unique(labels)[int(level) :]
        pool = np.flatnonzero(np.isin(labels, kept))
        return images[rng.choice(pool, n, replace=len(pool) < n)]
    chosen = images[rng.choice(len(images), n, replace=len(images) < n)].copy()
    if ramp == "noise share":
        noisy = rng.random(n) < level if 0 < level < 1 else np.full(n, level >= 1)
        chosen[noisy] = rng.integers(0, 256, (int(noisy.sum()), *images.shape[1:]), dtype=np.uint8)
    elif ramp == "blur radius":
        chosen = blur(chosen, level) if level > 0 else chosen
    elif ramp == "speckle share":
        chosen[rng.random(chosen.shape) < level] = 255
    else:
        raise ValueError(f"unknown ramp {ramp!r}; one of {', '.join(RAMPS)}")
    return chosen


def severity_ramps(
    features, reference: np.ndarray, images: np.ndarray, labels: np.ndarray, *, k: int = 5, seed: int = 0
) -> dict[str, list[dict[str, float]]]:
    """{ramp: [{level, fid, precision, recall, density, coverage}, ...]} against `reference`, with
    `images` real images held out from both the reference and the feature extractor's training."""
    rng = np.random.default_rng(seed)
    real = features(reference)
    n = len(reference)
    return {
        ramp: [
            {
                "level": float(level),
                "fid": fid(fake := features(ramp_set(images, labels, ramp, level, n, rng)), real),
                **prdc(real, fake, k),
            }
            for level in levels
        ]
        for ramp, levels in RAMPS.items()
    }


def monotone(values: list[float], direction: str) -> bool:
    """Every step moves the expected way (or stays level: a metric saturated at 0 stays there), up to
    STEP_TOLERANCE of the range, and the last level is beyond the first."""
    signed = np.asarray(values, np.float64) * (1 if direction == "up" else -1)
    tolerance = STEP_TOLERANCE * (signed.max() - signed.min())
    return bool(np.all(np.diff(signed) >= -tolerance) and signed[-1] > signed[0])


def ramp_checks(ramps: dict[str, list[dict[str, float]]]) -> list[dict]:
    """Each expected direction, the values along the ramp and whether they move that way."""
    return [
        {
            "ramp": ramp,
            "metric": metric,
            "direction": direction,
            "values": [row[metric] for row in ramps[ramp]],
            "ok": monotone([row[metric] for row in ramps[ramp]], direction),
        }
        for ramp, expected in RAMP_EXPECTATIONS.items()
        for metric, direction in expected.items()
    ]


def ramps_markdown(ramps: dict[str, list[dict[str, float]]]) -> str:
    """One row per (ramp, level); the last column says which expected directions failed."""
    failed = {(c["ramp"], c["metric"]) for c in ramp_checks(ramps) if not c["ok"]}
    lines = ["| ramp | level | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for ramp, rows in ramps.items():
        for row in rows:
            cells = [
                (f"{row[m]:.3g}" if m == "fid" else f"{row[m]:.3f}") + (" ✗" if (ramp, m) in failed else "")
                for m in METRICS
            ]
            lines.append(f"| {ramp} | {row['level']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
