"""The user's own files a scan reads besides its source (a calibration's calibration.json, a probe
folder's probe.json and probe.safetensors), checked field by field before the scan starts: a bad
file is one clear error naming the file and the field (exit 2), never a traceback after the scan."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

MAX_COUNT = 10**12  # image counts beyond this are not counts
COUNT_FIELDS = ("tp", "fn", "fp", "tn", "n_synthetic", "n_real")
PROBE_FIELDS = {"embedder", "preprocess", "normalized_inputs", "threshold", "metrics", "source", "dim", "encoder_id"}
PREPROCESSING = ("clip", "univfd")


class UserFileError(ValueError):
    """A file given by the user that cannot be used; the message names the file and the field."""


def read_json_object(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserFileError(f"cannot read {path}: {e}") from None
    if not isinstance(value, dict):
        raise UserFileError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def check_calibration(path: Path) -> dict:
    """calibration.json as `audit calibrate` writes it: the operating points a scan reads have whole,
    consistent counts in range and rates in [0, 1]; `detectors` names the calibrated detectors."""
    data = read_json_object(path)
    detectors = data.get("detectors")
    if not isinstance(detectors, dict):
        raise UserFileError(f"{path}: field 'detectors' must be an object of operating points")
    points = {f"detectors.{name}": point for name, point in detectors.items() if point != {}}
    points["hard_evidence"] = data.get("hard_evidence")
    for name in ("combined", "combined_rest"):  # older calibrations lack combined_rest; the estimate says so
        if name in data:
            points[name] = data[name]
    for name, point in points.items():
        _check_operating_point(point, f"{path}: field '{name}'")
    probe = data.get("probe", {})
    if not isinstance(probe, dict):
        raise UserFileError(f"{path}: field 'probe' must be an object")
    if probe.get("train_prior") is not None:
        _check_fraction(probe["train_prior"], f"{path}: field 'probe.train_prior'")
    if "soft_rest" in data:  # older calibrations lack it: the estimate then uses flag counts only
        _check_soft_rest(data["soft_rest"], f"{path}: field 'soft_rest'")
    if "shift" in data:
        _check_shift(data["shift"], f"{path}: field 'shift'")
    if "score_distributions" in data:  # older calibrations lack it: the scan's shift test then says it cannot run
        _check_score_distributions(data["score_distributions"], f"{path}: field 'score_distributions'")
    return data


def _check_score_distributions(distributions, where: str) -> None:
    """Per stratum and class: n, a whole number, and values, probabilities (audit/shift.py)."""
    if not isinstance(distributions, dict):
        raise UserFileError(f"{where} must be an object with 'rest' and 'hard'")
    for stratum in ("rest", "hard"):
        for label in ("synthetic", "real"):
            entry = (distributions.get(stratum) or {}).get(label)
            here = f"{where}.{stratum}.{label}"
            if not isinstance(entry, dict) or not isinstance(entry.get("values"), list):
                raise UserFileError(f"{here} must be an object with n and values")
            n = entry.get("n")
            if isinstance(n, bool) or not isinstance(n, int) or not len(entry["values"]) <= n <= MAX_COUNT:
                raise UserFileError(f"{here}.n must be a whole number from len(values) to {MAX_COUNT}, got {n!r}")
            for value in entry["values"]:
                _check_fraction(value, f"{here}.values[]")


def _check_soft_rest(soft, where: str) -> None:
    """Per class the probe's probabilities on held-out images without hard evidence: n, mean, variance."""
    if not isinstance(soft, dict):
        raise UserFileError(f"{where} must be an object with 'synthetic' and 'real'")
    for label in ("synthetic", "real"):
        entry = soft.get(label)
        if not isinstance(entry, dict):
            raise UserFileError(f"{where}.{label} must be an object with n, mean and variance")
        n = entry.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_COUNT:
            raise UserFileError(f"{where}.{label}.n must be a whole number from 0 to {MAX_COUNT}, got {n!r}")
        _check_fraction(entry.get("mean"), f"{where}.{label}.mean")
        _check_fraction(entry.get("variance"), f"{where}.{label}.variance")
        if entry["variance"] > 0.25 + 1e-12:  # a variable in [0, 1] has variance at most 1/4
            raise UserFileError(f"{where}.{label}.variance must be at most 0.25, got {entry['variance']!r}")


def _check_shift(shift, where: str) -> None:
    """The largest drops and the spread's min and max (audit calibrate): null (not measured) or from -1 to 1."""
    if not isinstance(shift, dict):
        raise UserFileError(f"{where} must be an object")
    spread = shift.get("spread") or {}
    if not isinstance(spread, dict):
        raise UserFileError(f"{where}.spread must be an object")
    values = {key: shift.get(key) for key in ("tpr_drop", "score_drop")}
    for measure, entry in spread.items():
        if entry is not None and not isinstance(entry, dict):
            raise UserFileError(f"{where}.spread.{measure} must be null or an object with min and max")
        values.update({f"spread.{measure}.{key}": entry.get(key) for key in ("min", "max") if entry})
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not -1 <= value <= 1:
            raise UserFileError(f"{where}.{key} must be null or a number from -1 to 1, got {value!r}")


def _check_operating_point(point, where: str) -> None:
    if not isinstance(point, dict):
        raise UserFileError(f"{where} must be an object with the counts {', '.join(COUNT_FIELDS)}")
    for key in COUNT_FIELDS:
        value = point.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise UserFileError(f"{where}.{key} must be a whole number from 0 to {MAX_COUNT}, got {value!r}")
    if point["tp"] + point["fn"] != point["n_synthetic"] or point["fp"] + point["tn"] != point["n_real"]:
        raise UserFileError(f"{where}: tp + fn must equal n_synthetic and fp + tn must equal n_real")
    for key in ("tpr", "fpr"):
        if point.get(key) is not None:
            _check_fraction(point[key], f"{where}.{key}")


def _check_fraction(value, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 1:
        raise UserFileError(f"{where} must be a number from 0 to 1, got {value!r}")


def check_probe(folder: str | Path) -> dict:
    """A probe folder: probe.json with known fields of the right types, and probe.safetensors (never a
    pickle) holding a finite weight vector of the stated dimension and one bias. Returns probe.json."""
    folder = Path(folder)
    sidecar = read_json_object(folder / "probe.json")
    where = folder / "probe.json"
    unknown = sorted(set(sidecar) - PROBE_FIELDS)
    if unknown:
        raise UserFileError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(PROBE_FIELDS))}")
    if not isinstance(sidecar.get("embedder"), str) or not sidecar["embedder"]:
        raise UserFileError(f"{where}: field 'embedder' must be an embedder spec such as ViT-B-32/openai")
    if sidecar.get("preprocess", "clip") not in PREPROCESSING:
        raise UserFileError(f"{where}: field 'preprocess' must be one of {', '.join(PREPROCESSING)}")
    threshold = sidecar.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise UserFileError(f"{where}: field 'threshold' must be a number between 0 and 1, got {threshold!r}")
    for key, kind in (("normalized_inputs", bool), ("metrics", dict), ("source", str)):
        if key in sidecar and not isinstance(sidecar[key], kind):
            raise UserFileError(f"{where}: field '{key}' must be a {kind.__name__}")
    if not isinstance(sidecar.get("encoder_id", ""), (str, type(None))):
        raise UserFileError(f"{where}: field 'encoder_id' must be a string such as sha256:<hex>")
    _check_probe_weights(folder / "probe.safetensors", sidecar.get("dim"))
    return sidecar


def _check_probe_weights(path: Path, dim) -> None:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError, ValueError) as e:
        raise UserFileError(f"{path} is not a safetensors file of a probe ({e}); pickles are never loaded") from None
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is None or bias is None or bias.size != 1 or weight.ndim > 2 or weight.size < 1:
        raise UserFileError(f"{path} must hold a weight vector 'weight' and a single 'bias'")
    if dim is not None and weight.size != dim:
        raise UserFileError(f"{path}: the weight has {weight.size} entries but probe.json says dim {dim}")
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise UserFileError(f"{path}: the weights hold NaN or infinity")
