"""Option defaults from `[tool.audit]` in pyproject.toml or from audit.toml.

The nearest folder (the current one, then its parents) holding either file wins; in one
folder audit.toml wins over pyproject.toml. Keys are the long option names of `audit scan`
(`fail-above` or `fail_above`); lists may be TOML arrays.
"""

from __future__ import annotations

from pathlib import Path

from audit.side_files import SideFileError, read_regular_file

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

SCAN_KEYS = {
    "out",
    "detectors",
    "workers",
    "batch_size",
    "resume",
    "overwrite",
    "format",
    "fail_above",
    "gate",
    "max_error_rate",
    "baseline",
    "fail_on_increase",
    "allow_missing_shards",
    "junit",
    "quiet",
    "pixel_limit",
    "item_timeout",
    "follow_links",
    "watermark_key",
    "watermark_p_threshold",
    "column",
    "embedder",
    "preprocess",
    "probe",
    "bank",
    "calibration",
    "neardup_hard",
    "neardup_soft",
    "phash_distance",
    "engine",
    "address",
    "num_workers",
    "group_by",
    "paths_under",
}
LIST_AS_TEXT = {"detectors"}  # the CLI takes these as comma-separated text


class ConfigError(Exception):
    """The configuration file is unreadable or names unknown options."""


def find_config(start: Path | None = None) -> Path | None:
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "audit.toml").is_file():
            return candidate / "audit.toml"
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and "audit" in _read(pyproject).get("tool", {}):
            return pyproject
    return None


def load_scan_defaults(path: Path | None) -> dict:
    """Defaults for `audit scan` from `path` (found automatically when None); {} when there is none."""
    path = path or find_config()
    if path is None:
        return {}
    data = _read(path)
    table = data.get("tool", {}).get("audit", {}) if path.name == "pyproject.toml" else data
    table = table.get("scan", table)  # allow [tool.audit.scan] or flat [tool.audit]
    defaults = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in SCAN_KEYS:
            raise ConfigError(f"{path}: unknown option {key!r}; known: {', '.join(sorted(SCAN_KEYS))}")
        if name in LIST_AS_TEXT and isinstance(value, list):
            value = ",".join(map(str, value))
        defaults[name] = value
    return defaults


def _read(path: Path) -> dict:
    try:  # a regular file of bounded size (a FIFO is refused at once, never waited on)
        return tomllib.loads(read_regular_file(path).decode("utf-8"))
    except SideFileError as e:
        raise ConfigError(str(e)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as e:
        raise ConfigError(f"cannot read {path}: {type(e).__name__}: {e}") from None
