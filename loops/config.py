"""Simulation settings: `SimConfig`, per-model defaults, validation, sweeps and the built-in preset.

`plan()` turns what the user asked for into the list of fully resolved configurations that
`simulate()` runs, plus notes about settings that were ignored or adjusted (never silently).
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields, replace

MODELS = ("gaussian", "gmm")
LOOPS = ("fully-synthetic", "augment", "fresh", "accumulate")
FILTERS = ("none", "oracle", "watermark", "probe", "neardup", "all")
METRICS = ("moments", "fid", "prdc")
DEFAULT_CONTAMINATION = 0.5
MODEL_DEFAULTS = {
    "gaussian": {"samples_per_gen": 100, "generations": 30, "repeats": 10, "data": "gaussian"},
    "gmm": {"samples_per_gen": 1000, "generations": 10, "repeats": 3, "data": "grid25"},
}
DEFAULT_MNIST_DIM = 16


class ConfigError(ValueError):
    """Settings that cannot run; the message says which option and why."""


@dataclass(frozen=True)
class SimConfig:
    """One configuration of the loop; `None` means "the default for this model/loop" (see `resolve`).

    seed: run r of the `repeats` uses seed + r, so one run can be reproduced on its own.
    contamination: share of synthetic items in each training pool from generation 1 on
        (1 by definition for fully-synthetic; accumulate's share grows as g/(g+1)).
    bias: sampling bias lambda; the backend samples with its covariances scaled by it.
    filter_tpr / filter_fpr: the filter's operating point (resolved from defaults or a file).
    filter_rates: per-detector (name, tpr, fpr) from a calibration file (named filters and `all`).
    """

    model: str = "gaussian"
    loop: str = "fresh"
    contamination: float | None = None
    samples_per_gen: int | None = None
    generations: int | None = None
    repeats: int | None = None
    seed: int = 0
    bias: float = 1.0
    unbiased: bool = False
    dim: int | None = None
    components: int = 25
    data: str | None = None
    test_size: int | None = None
    filter: str = "none"
    filter_tpr: float | None = None
    filter_fpr: float | None = None
    filter_rates: tuple[tuple[str, float, float], ...] = ()
    metrics: tuple[str, ...] = METRICS
    k: int = 5

    def to_dict(self) -> dict:
        d = asdict(self)
        d["filter_rates"] = [list(r) for r in self.filter_rates]
        d["metrics"] = list(self.metrics)
        return d


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


SWEEPABLE = {
    "model": str, "loop": str, "contamination": float, "samples_per_gen": int, "generations": int,
    "bias": float, "unbiased": _parse_bool, "dim": int, "components": int, "data": str, "test_size": int,
    "filter": str, "filter_tpr": float, "filter_fpr": float, "k": int,
}


def parse_sweep(specs) -> list[tuple[str, list]]:
    """`["loop=fresh,accumulate", "bias=0.9,1"]` -> [("loop", ["fresh", "accumulate"]), ("bias", [0.9, 1.0])]."""
    parsed = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--sweep {spec!r}: expected key=v1,v2,...")
        if key not in SWEEPABLE:
            raise ConfigError(f"--sweep {spec!r}: cannot sweep {key!r}; sweepable: {', '.join(SWEEPABLE)}")
        try:
            parsed.append((key, [SWEEPABLE[key](v.strip()) for v in values.split(",")]))
        except ValueError as e:
            raise ConfigError(f"--sweep {spec!r}: {e}") from None
    return parsed


def preset(base: SimConfig) -> list[SimConfig]:
    """The built-in comparison: the worst case against fresh data, filters, and accumulation."""
    fresh = replace(base, loop="fresh", contamination=DEFAULT_CONTAMINATION)
    return [
        replace(base, loop="fully-synthetic"),
        fresh,
        replace(fresh, filter="watermark"),
        replace(fresh, filter="oracle"),
        replace(base, loop="accumulate"),
    ]


def plan(base: SimConfig | None = None, sweep=(), use_preset: bool = False) -> tuple[list[SimConfig], list[str]]:
    """Resolved configurations to run (duplicates dropped) and notes for the user."""
    base = base or SimConfig()
    candidates = preset(base) if use_preset else [base]
    for key, values in sweep:
        candidates = [replace(c, **{key: v}) for c, v in itertools.product(candidates, values)]
    configs, notes = [], []
    for candidate in candidates:
        config, config_notes = resolve(candidate)
        notes += [n for n in config_notes if n not in notes]
        if config not in configs:
            configs.append(config)
    if len(configs) < len(candidates):
        notes.append(f"{len(candidates) - len(configs)} swept configuration(s) resolved to duplicates and run once")
    return configs, notes


def resolve(config: SimConfig) -> tuple[SimConfig, list[str]]:
    """Fill model/loop defaults, check every setting, resolve the filter's operating point."""
    from loops.mitigate import DEFAULT_RATES, operating_point

    _check_choice("model", config.model, MODELS)
    _check_choice("loop", config.loop, LOOPS)
    _check_choice("filter", config.filter, FILTERS)
    for metric in config.metrics:
        _check_choice("metrics", metric, METRICS)
    defaults = MODEL_DEFAULTS[config.model]
    config = replace(config, **{k: v for k, v in defaults.items() if getattr(config, k) is None})
    config, notes = _resolve_contamination(config)
    config = replace(config, dim=_resolve_dim(config), test_size=config.test_size or config.samples_per_gen)
    _check_ranges(config)
    measured = {name: (t, f) for name, t, f in config.filter_rates}
    if measured and config.filter in DEFAULT_RATES and config.filter not in measured and config.filter_tpr is None:
        notes.append(f"the rates file has no measured rates for {config.filter}; its default operating point "
                     f"(TPR {DEFAULT_RATES[config.filter][0]:g}, FPR {DEFAULT_RATES[config.filter][1]:g}) is used")
    tpr, fpr = operating_point(config.filter, config.filter_tpr, config.filter_fpr, measured)
    return replace(config, filter_tpr=tpr, filter_fpr=fpr), notes


def _resolve_contamination(config: SimConfig) -> tuple[SimConfig, list[str]]:
    c = config.contamination
    if config.loop == "fully-synthetic":
        notes = [] if c in (None, 1, 1.0) else [
            f"fully-synthetic trains only on synthetic data from generation 1 on: contamination is 1 "
            f"by definition, the given {c:g} is ignored"]
        return replace(config, contamination=1.0), notes
    if config.loop == "accumulate":
        notes = [] if c is None else [
            f"accumulate keeps the real data and all earlier synthetic data, so the synthetic share "
            f"grows as g/(g+1); the given contamination {c:g} is ignored"]
        return replace(config, contamination=None), notes
    if c is None:
        return replace(config, contamination=DEFAULT_CONTAMINATION), []
    if not 0.0 <= c <= 1.0:
        raise ConfigError(f"--contamination must be between 0 and 1, got {c:g}")
    return config, []


def _resolve_dim(config: SimConfig) -> int | None:
    data = config.data
    if data == "gaussian":
        return config.dim or 2
    if data == "grid25":
        if config.dim not in (None, 2):
            raise ConfigError(f"--data grid25 is two-dimensional; --dim {config.dim} does not apply")
        return 2
    if data.startswith("mnist:"):
        return config.dim or DEFAULT_MNIST_DIM
    return config.dim


def _check_choice(option: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"--{option.replace('_', '-')} {value!r} is not one of: {', '.join(choices)}")


def _check_ranges(c: SimConfig) -> None:
    checks = [
        (c.samples_per_gen >= 2, f"--samples-per-gen must be at least 2, got {c.samples_per_gen}"),
        (c.generations >= 0, f"--generations must be at least 0, got {c.generations}"),
        (c.repeats >= 1, f"--repeats must be at least 1, got {c.repeats}"),
        (c.bias > 0, f"--bias must be positive, got {c.bias:g}"),
        (c.dim is None or c.dim >= 1, f"--dim must be at least 1, got {c.dim}"),
        (c.components >= 1, f"--components must be at least 1, got {c.components}"),
        (c.model != "gmm" or c.components <= c.samples_per_gen,
         f"--components {c.components} exceeds --samples-per-gen {c.samples_per_gen}"),
        (c.model == "gaussian" or not c.unbiased, "--unbiased applies to the gaussian backend only"),
        (c.k >= 1, f"--k must be at least 1, got {c.k}"),
        ("prdc" not in c.metrics or min(c.samples_per_gen, c.test_size) > c.k,
         f"PRDC with k={c.k} needs more than {c.k} samples and test items"),
        (c.test_size >= 2, f"--test-size must be at least 2, got {c.test_size}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def config_fields() -> list[str]:
    return [f.name for f in fields(SimConfig)]


def labels(configs: list[SimConfig]) -> list[str]:
    """Short, distinct names: loop, contamination and filter, plus whatever else differs."""
    varying = [name for name in config_fields()
               if name not in ("loop", "contamination", "filter", "filter_tpr", "filter_fpr")
               and len({getattr(c, name) for c in configs}) > 1]
    names = []
    for c in configs:
        parts = [c.loop]
        if c.loop in ("augment", "fresh"):
            parts.append(f"c={c.contamination:g}")
        if c.filter != "none":
            parts.append(f"filter={c.filter}")
        parts += [f"{name}={getattr(c, name)}" for name in varying]
        names.append(" ".join(parts))
    return _distinct(names, configs)


def _distinct(names: list[str], configs: list[SimConfig]) -> list[str]:
    """Filters that differ only in their operating point would share a name; add the rates."""
    if len(set(names)) == len(names):
        return names
    return [f"{n} tpr={c.filter_tpr:g} fpr={c.filter_fpr:g}" if names.count(n) > 1 else n
            for n, c in zip(names, configs)]
