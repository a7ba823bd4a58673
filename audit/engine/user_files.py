"""The user's own files a scan reads besides its source (a calibration's calibration.json, a probe
folder's probe.json and probe.safetensors), checked field by field before the scan starts: a bad
file is one clear error naming the file and the field (exit 2), never a traceback after the scan."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from audit.side_files import SideFileError
from audit.side_files import read_json_object as read_side_json

MAX_COUNT = 10**12  # image counts beyond this are not counts
COUNT_FIELDS = ("tp", "fn", "fp", "tn", "n_synthetic", "n_real")
PROBE_FIELDS = {"embedder", "preprocess", "normalized_inputs", "threshold", "metrics", "source", "dim", "encoder_id"}
PREPROCESSING = ("clip", "univfd")


class UserFileError(SideFileError):
    """A file given by the user that cannot be used; the message names the file and the field."""


def read_json_object(path: Path) -> dict:
    """The JSON object in `path`, through the one reader of side files (audit/side_files.py)."""
    try:
        return read_side_json(path, strict=False)  # NaN and Infinity: refused by the field checks, by name
    except SideFileError as e:
        raise UserFileError(str(e)) from None


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
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not -1 <= value <= 1
        ):
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
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
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


# --- a scan's summary.json, read by --baseline and by `--from-scan` --------------------------------

SUMMARY_OBJECTS = ("per_generator", "per_tool", "per_detector", "skipped_detectors", "config")


def check_summary(path: Path, need_fraction: bool = False) -> dict:
    """summary.json of an `audit scan`: the fields other commands read have the types the scan writes.
    `need_fraction`: the estimate must hold an interval and a point or flagged fraction (--baseline)."""
    data = read_json_object(path)
    estimate = data.get("estimate")
    if not isinstance(estimate, dict):
        raise UserFileError(f"{path}: field 'estimate' must be an object; not the summary of an `audit scan`")
    for key in ("point", "flagged_fraction", "lower_bound"):
        if estimate.get(key) is not None:
            _check_fraction(estimate[key], f"{path}: field 'estimate.{key}'")
    if estimate.get("interval") is not None or need_fraction:
        _check_interval(estimate.get("interval"), f"{path}: field 'estimate.interval'")
    if need_fraction and estimate.get("point") is None and estimate.get("flagged_fraction") is None:
        raise UserFileError(
            f"{path}: field 'estimate.flagged_fraction' must be a number from 0 to 1 when 'estimate.point' is null"
        )
    if data.get("counts") is not None or need_fraction:
        _check_counts(data.get("counts"), f"{path}: field 'counts'")
    for key in SUMMARY_OBJECTS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise UserFileError(f"{path}: field '{key}' must be an object")
    _check_names(data.get("detectors"), f"{path}: field 'detectors'")
    config = data.get("config") or {}
    _check_names(config.get("detectors"), f"{path}: field 'config.detectors'")
    if config.get("calibration") is not None and not isinstance(config["calibration"], str):
        raise UserFileError(f"{path}: field 'config.calibration' must be null or a folder name")
    _check_groups(data.get("groups"), f"{path}: field 'groups")
    return data


def _check_interval(interval, where: str) -> None:
    if not isinstance(interval, list) or len(interval) != 2:
        raise UserFileError(f"{where} must be [low, high], two numbers from 0 to 1, got {interval!r}")
    for value in interval:
        _check_fraction(value, where)
    if interval[0] > interval[1]:
        raise UserFileError(f"{where} must have low <= high, got {interval!r}")


def _check_counts(counts, where: str) -> None:
    if not isinstance(counts, dict):
        raise UserFileError(f"{where} must be an object of image counts")
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise UserFileError(f"{where[:-1]}.{key}' must be a whole number from 0 to {MAX_COUNT}, got {value!r}")


def _check_names(names, where: str) -> None:
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise UserFileError(f"{where} must be a list of detector names")


def _check_groups(groups, where: str) -> None:
    """`where` is the field's start, "...field 'groups"; the group list's entries are named in it."""
    if groups is None:
        return
    if not isinstance(groups, dict) or not isinstance(groups.get("groups", []), list):
        raise UserFileError(f"{where}' must be an object with a list 'groups'")
    if groups.get("by") is not None and not isinstance(groups["by"], str):
        raise UserFileError(f"{where}.by' must be null or text")
    left_off = groups.get("left_off")
    if left_off is not None and (isinstance(left_off, bool) or not isinstance(left_off, int) or left_off < 0):
        raise UserFileError(f"{where}.left_off' must be a whole number")
    for i, group in enumerate(groups.get("groups", [])):
        if not isinstance(group, dict) or not isinstance(group.get("group"), str):
            raise UserFileError(f"{where}.groups[{i}]' must be an object with a 'group' name")
        if group.get("flagged_share") is not None:
            _check_fraction(group["flagged_share"], f"{where}.groups[{i}].flagged_share'")
