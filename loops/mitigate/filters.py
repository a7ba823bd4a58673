"""Filters: which items of a training pool reach the model.

Without images (the toy backends) a detector acts through its operating point: each synthetic
item is removed with probability TPR and each real item with probability FPR, decided against
ground truth. The draw is the item's fixed `luck` (drawn once when it enters the world), so a
detector decides the same way about the same item every generation, as a real detector would.
`--filter all` removes an item when any detector of the union flags it (detectors assumed
independent; the union is DEFAULT_UNION unless a configuration names its detectors, as `audit
advise --from-scan` does with the detectors the scan ran).
Image worlds run the real detectors instead (`FlagFilter`, same `keep(pool)` hook).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.side_files import SideFileError, read_json
from loops.errors import ConfigError

# Illustrative operating points, not measurements: replace them with `audit calibrate` output.
DEFAULT_RATES = {
    # only a share of generators embed a decodable watermark, and re-encoding loses some;
    # a decoded mark is hard evidence
    "watermark": (0.5, 0.0),
    # a linear probe on CLIP features: catches most, with some false alarms
    "probe": (0.9, 0.05),
    # only images close to a known synthetic image in the bank are caught
    "neardup": (0.2, 0.001),
    # generator metadata (PNG parameters, C2PA, IPTC DigitalSourceType): written by some tools and
    # stripped by most re-sharing; hard evidence. A toy filter only: image worlds publish no metadata
    "metadata": (0.3, 0.0),
}
DEFAULT_UNION = ("watermark", "probe", "neardup")  # what `--filter all` combines unless told otherwise
TPR_KEYS = ("tpr", "recall", "true_positive_rate")
FPR_KEYS = ("fpr", "false_positive_rate")


class OperatingPointFilter:
    """Removes synthetic items with probability `tpr` and real items with probability `fpr`."""

    def __init__(self, tpr: float, fpr: float):
        self.tpr, self.fpr = tpr, fpr

    def keep(self, pool) -> np.ndarray:
        """(runs, items) bool: True where the item goes into training."""
        threshold = np.where(pool.synthetic, self.tpr, self.fpr)
        return ~(pool.luck < threshold[None, :])


class FlagFilter:
    """Image worlds: removes the items the curator's real detectors flagged (`oracle`: the
    synthetic ones, by ground truth; `all`: flagged by any detector)."""

    def __init__(self, name: str):
        self.name = name

    def keep(self, pool) -> np.ndarray:
        shape = pool.luck.shape
        if self.name == "none":
            return np.ones(shape, bool)
        if self.name == "oracle":
            return np.broadcast_to(~pool.synthetic, shape).copy()
        flagged = np.zeros(shape, bool)
        for detector in pool.detectors if self.name == "all" else [self.name]:
            flagged |= pool.flag(detector)
        return ~flagged


def operating_point(
    name: str,
    tpr: float | None = None,
    fpr: float | None = None,
    rates: dict[str, tuple[float, float]] | None = None,
    union: tuple[str, ...] = (),
) -> tuple[float, float]:
    """The (tpr, fpr) of filter `name`: explicit values, else `rates` (a calibration file), else
    defaults; `all` combines the detectors of `union` (empty: DEFAULT_UNION)."""
    rates = {**DEFAULT_RATES, **(rates or {})}
    if name in ("none", "oracle", "all"):
        point = _fixed_point(name, {d: rates[d] for d in (union or DEFAULT_UNION)})
        if (tpr is not None and tpr != point[0]) or (fpr is not None and fpr != point[1]):
            raise ConfigError(
                f"--filter-tpr/--filter-fpr set one detector's rates; they do not apply to "
                f"--filter {name} (use --filter-rates FILE for per-detector rates)"
            )
        return point
    default_tpr, default_fpr = rates[name]
    tpr = default_tpr if tpr is None else tpr
    fpr = default_fpr if fpr is None else fpr
    for label, value in (("TPR", tpr), ("FPR", fpr)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} {label} must be between 0 and 1, got {value:g}")
    return float(tpr), float(fpr)


def _fixed_point(name: str, rates: dict[str, tuple[float, float]]) -> tuple[float, float]:
    if name == "none":
        return 0.0, 0.0
    if name == "oracle":
        return 1.0, 0.0
    miss = np.prod([1.0 - t for t, _ in rates.values()])
    clean = np.prod([1.0 - f for _, f in rates.values()])
    return float(1.0 - miss), float(1.0 - clean)


def load_rates(path) -> dict[str, tuple[float, float]]:
    """Operating points from a calibration or scan summary JSON.

    Accepted shapes (lenient): {"detectors": {"watermark": {"tpr": .., "fpr": ..}, ...}} (what
    `audit calibrate` writes to calibration.json) or the same mapping at the top level; per detector
    the rates may sit directly or under "operating_point", named tpr/recall/true_positive_rate and
    fpr/false_positive_rate. Detectors the simulator does not filter with, and detectors whose rates
    are null (not measured), are skipped; those filters keep their default operating point.
    """
    path = Path(path)
    try:  # audit's one reader of side files: regular file, size and nesting limits
        doc = read_json(path)
    except SideFileError as e:
        raise ConfigError(f"--filter-rates {e}") from None
    detectors = doc.get("detectors", doc) if isinstance(doc, dict) else None
    if not isinstance(detectors, dict):
        raise ConfigError(f"--filter-rates {path}: expected an object with a 'detectors' mapping")
    found = {name: _rates_of(path, name, entry) for name, entry in detectors.items() if name in DEFAULT_RATES}
    rates = {name: point for name, point in found.items() if point is not None}
    if not rates:
        raise ConfigError(f"--filter-rates {path}: no measured rates for any of {', '.join(DEFAULT_RATES)}")
    return rates


def _rates_of(path: Path, name: str, entry) -> tuple[float, float] | None:
    if isinstance(entry, dict) and isinstance(entry.get("operating_point"), dict):
        entry = entry["operating_point"]
    if not isinstance(entry, dict):
        raise ConfigError(f"--filter-rates {path}: detector {name!r} is not an object")
    values = []
    for keys in (TPR_KEYS, FPR_KEYS):
        found = [entry[k] for k in keys if k in entry]
        if found and found[0] is None:
            return None
        if not found or isinstance(found[0], bool) or not isinstance(found[0], (int, float)) or not 0 <= found[0] <= 1:
            raise ConfigError(
                f"--filter-rates {path}: detector {name!r} needs {keys[0]} (or "
                f"{'/'.join(keys[1:])}) as a number between 0 and 1"
            )
        values.append(float(found[0]))
    return values[0], values[1]
