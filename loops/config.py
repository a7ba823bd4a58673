"""Simulation settings: `SimConfig`, per-model defaults, validation, sweeps and the built-in preset.

`plan()` turns what the user asked for into the list of fully resolved configurations that
`simulate()` runs, plus notes about settings that were ignored or adjusted (never silently).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields, replace

from loops.errors import ConfigError  # noqa: F401  (re-exported: callers catch loops.config.ConfigError)
from loops.mitigate.filters import DEFAULT_RATES, operating_point

MODELS = ("gaussian", "gmm", "diffusion")
LOOPS = ("fully-synthetic", "augment", "fresh", "accumulate")
FILTERS = ("none", "oracle", "watermark", "probe", "neardup", "metadata", "all")
METRICS = ("moments", "fid", "prdc")
DEFAULT_CONTAMINATION = 0.5
# The stated default scenario of `audit simulate`, `loops.simulate`, `loops.SimConfig()` and
# examples/api_tour.py: the toy backends sample with MAD's sampling bias lambda = 0.7 (covariances
# scaled by 0.7, like cherry-picking or strong guidance). At lambda = 1 a toy model's samples are as
# spread as its data and a synthetic share costs little; at 0.7 each generation loses variance, which
# is the collapse the papers describe. Diffusion samples without guidance (lambda = 1) by default.
SCENARIO_BIAS = 0.7
# The one table of defaults: `resolve()` fills every field left None from it, so the command line and
# the Python API (which both leave unset options None) run the same configuration.
MODEL_DEFAULTS = {
    "gaussian": {"samples_per_gen": 100, "generations": 30, "repeats": 10, "data": "gaussian", "bias": SCENARIO_BIAS},
    "gmm": {"samples_per_gen": 1000, "generations": 10, "repeats": 3, "data": "grid25", "bias": SCENARIO_BIAS},
    "diffusion": {"samples_per_gen": 1000, "generations": 5, "repeats": 1},  # bias: 1 / (1 + guidance)
}
IMAGE_FILTERS = ("watermark", "probe", "neardup")  # the real detectors an image world runs
DEFAULT_MNIST_DIM = 16


@dataclass(frozen=True)
class SimConfig:
    """One configuration of the loop; `None` means "the default for this model/loop" (see `resolve`).

    seed: run r of the `repeats` uses seed + r, so one run can be reproduced on its own.
    contamination: share of synthetic items in each training pool from generation 1 on
        (1 by definition for fully-synthetic; accumulate's share grows as g/(g+1)).
    bias: sampling bias lambda; the backend samples with its covariances scaled by it (None: the
        model's default in MODEL_DEFAULTS, 0.7 for the toys; diffusion: 1 / (1 + guidance)).
    filter_tpr / filter_fpr: the filter's operating point (resolved from defaults or a file); toy
        backends only: image worlds run the real detectors instead.
    filter_rates: per-detector (name, tpr, fpr) from a calibration file (named filters and `all`).
    union: the detectors `filter="all"` combines (empty: watermark, probe and neardup).
    model: None means diffusion when `dataset` is given, else gaussian.
    dataset: labelled image data for the diffusion backend (loops/images/datasets.py).
    guidance: classifier-free guidance weight w (diffusion); bias is then lambda = 1 / (1 + w).
    reweight: "tails[:alpha]" weights training items by k-NN density^-alpha (loops/mitigate/reweight.py).
    watermark_rate .. transform_rate: how an image world publishes (loops/images/publish.py).
    bank_rate: share of each generation's synthetic output the curator's near-duplicate bank holds.
    probe_embedder / probe: the curator's probe embedder, or a trained probe/calibration folder.
    from_scan: the scan summary the contamination and rates came from (recorded, not re-read).
    """

    model: str | None = None
    loop: str = "fresh"
    contamination: float | None = None
    samples_per_gen: int | None = None
    generations: int | None = None
    repeats: int | None = None
    seed: int = 0
    bias: float | None = None
    unbiased: bool = False
    dim: int | None = None
    components: int = 25
    data: str | None = None
    test_size: int | None = None
    filter: str = "none"
    filter_tpr: float | None = None
    filter_fpr: float | None = None
    filter_rates: tuple[tuple[str, float, float], ...] = ()
    union: tuple[str, ...] = ()
    metrics: tuple[str, ...] = METRICS
    k: int = 5
    dataset: str | None = None
    guidance: float | None = None
    reweight: str | None = None
    diffusion_preset: str | None = None
    train_steps: int | None = None
    train_epochs: float | None = None
    sample_steps: int | None = None
    device: str | None = None
    watermark_rate: float = 0.5
    jpeg_quality: int | None = None
    resize: float | None = None
    transform_rate: float = 1.0
    bank_rate: float = 0.5
    probe_embedder: str = "ViT-B-32/openai"
    probe: str | None = None
    probe_size: int = 500
    from_scan: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["filter_rates"] = [list(r) for r in self.filter_rates]
        d["union"] = list(self.union)
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
    "model": str,
    "loop": str,
    "contamination": float,
    "samples_per_gen": int,
    "generations": int,
    "bias": float,
    "unbiased": _parse_bool,
    "dim": int,
    "components": int,
    "data": str,
    "test_size": int,
    "filter": str,
    "filter_tpr": float,
    "filter_fpr": float,
    "k": int,
    "guidance": float,
    "reweight": str,
    "watermark_rate": float,
    "jpeg_quality": int,
    "resize": float,
    "transform_rate": float,
    "bank_rate": float,
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


def scenario() -> SimConfig:
    """The default scenario: what `audit simulate` without options and `loops.simulate()` run (the
    defaults of `SimConfig()`, resolved from MODEL_DEFAULTS)."""
    return SimConfig()


def plan(
    base: SimConfig | None = None, sweep=(), use_preset: bool = False, baseline: bool = False
) -> tuple[list[SimConfig], list[str]]:
    """Resolved configurations to run (duplicates dropped) and notes for the user; `baseline` adds
    the all-real control and each mitigated configuration's no-mitigation baseline."""
    base = base or SimConfig()
    candidates = preset(base) if use_preset else [base]
    for key, values in sweep:
        candidates = [replace(c, **{key: v}) for c, v in itertools.product(candidates, values)]
    if baseline:
        from loops.baselines import with_baselines

        candidates = with_baselines(candidates)
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
    config = replace(config, model=config.model or ("diffusion" if config.dataset else "gaussian"))
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
    if config.reweight is not None:
        parse_reweight(config.reweight)
    if config.model == "diffusion":
        if config.filter == "metadata":
            raise ConfigError(
                "--filter metadata is a toy-backend filter: an image world publishes no generator "
                "metadata (its curators run watermark, probe and neardup)"
            )
        if config.filter_rates:
            notes.append(
                "an image world runs the real detectors and measures their rates each generation; "
                "the given operating points are not used"
            )
        return _resolve_diffusion(config), notes
    _reject_image_options(config)
    measured = {name: (t, f) for name, t, f in config.filter_rates}
    if measured and config.filter in DEFAULT_RATES and config.filter not in measured and config.filter_tpr is None:
        notes.append(
            f"the rates file has no measured rates for {config.filter}; its default operating point "
            f"(TPR {DEFAULT_RATES[config.filter][0]:g}, FPR {DEFAULT_RATES[config.filter][1]:g}) is used"
        )
    unknown = [d for d in config.union if d not in DEFAULT_RATES]
    if unknown:
        raise ConfigError(f"union: unknown detector(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_RATES)}")
    tpr, fpr = operating_point(config.filter, config.filter_tpr, config.filter_fpr, measured, config.union)
    return replace(config, filter_tpr=tpr, filter_fpr=fpr), notes


def _resolve_diffusion(config: SimConfig) -> SimConfig:
    """Dataset, guidance (w and lambda = 1/(1+w) agree), preset, steps and device filled in."""
    from loops.models.diffusion import PRESETS, default_device, default_preset_name

    if not config.dataset:
        raise ConfigError("the diffusion backend needs --dataset (mnist:DIR, a folder of class subfolders or hf:NAME)")
    if config.data is not None:
        raise ConfigError("--data is for the toy backends; the diffusion backend reads --dataset")
    if config.filter_tpr is not None or config.filter_fpr is not None:
        raise ConfigError(
            "--filter-tpr/--filter-fpr set toy operating points; an image world runs the real "
            "detectors, whose rates are measured each generation"
        )
    guidance = config.guidance
    if guidance is None:
        bias = 1.0 if config.bias is None else config.bias
        if bias > 1:
            raise ConfigError(f"--bias for diffusion is MAD's lambda = 1/(1+w), at most 1; got {bias:g}")
        guidance = 1.0 / bias - 1.0
    elif guidance < 0:
        raise ConfigError(f"--guidance must be at least 0, got {guidance:g}")
    elif config.bias not in (None, 1.0) and abs(config.bias - 1.0 / (1.0 + guidance)) > 1e-9:
        raise ConfigError(f"--bias {config.bias:g} and --guidance {guidance:g} disagree (lambda = 1/(1+w)); give one")
    device = config.device or default_device()
    preset_name = config.diffusion_preset or default_preset_name(device)
    _check_choice("diffusion_preset", preset_name, tuple(PRESETS))
    preset = PRESETS[preset_name]
    return replace(
        config,
        guidance=float(guidance),
        bias=1.0 / (1.0 + guidance),
        device=device,
        diffusion_preset=preset_name,
        train_steps=None if config.train_epochs else config.train_steps or preset.train_steps,
        sample_steps=config.sample_steps or preset.sample_steps,
    )


def _reject_image_options(config: SimConfig) -> None:
    if config.dataset:
        raise ConfigError(
            f"--dataset is image data for the diffusion backend, not --model {config.model} (toy backends read --data)"
        )
    for name in ("guidance", "diffusion_preset", "train_steps", "train_epochs", "sample_steps"):
        if getattr(config, name) is not None:
            raise ConfigError(f"--{name.replace('_', '-')} applies to the diffusion backend only")


def parse_reweight(spec: str) -> float | None:
    """`tails` -> None (alpha = 1/N, see loops/mitigate/reweight.py) or `tails:ALPHA` -> alpha."""
    kind, _, alpha = spec.partition(":")
    try:
        value = float(alpha) if alpha else None
    except ValueError:
        value = -1.0
    if kind != "tails" or (value is not None and not value > 0):
        raise ConfigError(f"--reweight {spec!r}: expected tails or tails:ALPHA with ALPHA > 0")
    return value


def _resolve_contamination(config: SimConfig) -> tuple[SimConfig, list[str]]:
    c = config.contamination
    if config.loop == "fully-synthetic":
        notes = (
            []
            if c in (None, 1, 1.0)
            else [
                f"fully-synthetic trains only on synthetic data from generation 1 on: contamination is 1 "
                f"by definition, the given {c:g} is ignored"
            ]
        )
        return replace(config, contamination=1.0), notes
    if config.loop == "accumulate":
        notes = (
            []
            if c is None
            else [
                f"accumulate keeps the real data and all earlier synthetic data, so the synthetic share "
                f"grows as g/(g+1); the given contamination {c:g} is ignored"
            ]
        )
        return replace(config, contamination=None), notes
    if c is None:
        return replace(config, contamination=DEFAULT_CONTAMINATION), []
    if not 0.0 <= c <= 1.0:
        raise ConfigError(f"--contamination must be between 0 and 1, got {c:g}")
    return config, []


def _resolve_dim(config: SimConfig) -> int | None:
    data = config.data
    if data is None:
        return config.dim
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
        (c.bias is None or c.bias > 0, f"--bias must be positive, got {c.bias}"),
        (c.dim is None or c.dim >= 1, f"--dim must be at least 1, got {c.dim}"),
        (c.components >= 1, f"--components must be at least 1, got {c.components}"),
        (
            c.model != "gmm" or c.components <= c.samples_per_gen,
            f"--components {c.components} exceeds --samples-per-gen {c.samples_per_gen}",
        ),
        (c.model == "gaussian" or not c.unbiased, "--unbiased applies to the gaussian backend only"),
        (c.k >= 1, f"--k must be at least 1, got {c.k}"),
        (
            "prdc" not in c.metrics or min(c.samples_per_gen, c.test_size) > c.k,
            f"PRDC with k={c.k} needs more than {c.k} samples and test items",
        ),
        (c.test_size >= 2, f"--test-size must be at least 2, got {c.test_size}"),
        (c.jpeg_quality is None or 1 <= c.jpeg_quality <= 95, f"--jpeg-quality must be 1..95, got {c.jpeg_quality}"),
        (c.resize is None or 0 < c.resize <= 1, f"--resize must be in (0, 1], got {c.resize}"),
        (c.probe_size >= 10, f"--probe-size must be at least 10, got {c.probe_size}"),
        (c.train_steps is None or c.train_steps >= 1, f"--train-steps must be at least 1, got {c.train_steps}"),
        (c.train_epochs is None or c.train_epochs > 0, f"--train-epochs must be above 0, got {c.train_epochs}"),
        (c.train_epochs is None or c.train_steps is None, "give --train-steps or --train-epochs, not both"),
        (c.sample_steps is None or c.sample_steps >= 1, f"--sample-steps must be at least 1, got {c.sample_steps}"),
    ] + [
        (0 <= getattr(c, name) <= 1, f"--{name.replace('_', '-')} must be between 0 and 1, got {getattr(c, name):g}")
        for name in ("watermark_rate", "transform_rate", "bank_rate")
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def config_fields() -> list[str]:
    return [f.name for f in fields(SimConfig)]


def labels(configs: list[SimConfig]) -> list[str]:
    """Short, distinct names: loop, contamination and filter, plus whatever else differs."""
    varying = [
        name
        for name in config_fields()
        if name not in ("loop", "contamination", "filter", "filter_tpr", "filter_fpr")
        and len({getattr(c, name) for c in configs}) > 1
    ]
    names = []
    for c in configs:
        parts = [c.loop]
        if c.loop in ("augment", "fresh"):
            parts.append(f"c={c.contamination:g}")
        if parts == ["fresh", "c=0"] and c.filter == "none" and not c.reweight:
            parts = ["all-real control"]
        if c.filter != "none":
            parts.append(f"filter={c.filter}")
        parts += [f"{name}={getattr(c, name)}" for name in varying]
        names.append(" ".join(parts))
    return _distinct(names, configs)


def _distinct(names: list[str], configs: list[SimConfig]) -> list[str]:
    """Filters that differ only in their operating point would share a name; add the rates."""
    if len(set(names)) == len(names):
        return names
    return [
        f"{n} tpr={c.filter_tpr:g} fpr={c.filter_fpr:g}" if names.count(n) > 1 else n for n, c in zip(names, configs)
    ]
