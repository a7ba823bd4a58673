"""What a simulation run was, in words: the world and backend, what each filter means there (its
operating point and where the rates came from), the comparisons, and the legend of the metric
columns (each with the direction that is better). The command prints these lines first, and
summary.json and report.html carry them (`explanation`, `legend`)."""

from __future__ import annotations

from loops.mitigate.filters import DEFAULT_RATES, DEFAULT_UNION

COLUMNS = {  # metric -> (column name, what it means)
    "w2": (
        "W2 ↓",
        "Wasserstein-2 distance of the model's output distribution to the true Gaussian (closed form; 0 = identical)",
    ),
    "fid": ("FID ↓", "Fréchet distance between the samples and held-out real items (lower = closer)"),
    "precision": ("precision ↑", "share of samples that fall where real data lies (fidelity)"),
    "recall": ("recall ↑", "share of real data the samples reach (diversity)"),
    "density": ("density ≈1", "how crowded the samples are around real items (1 = like real data)"),
    "coverage": ("coverage ↑", "share of real items with a sample nearby (diversity)"),
    "var_ratio": ("variance ≈1", "total variance of the model's output over the data's (below 1 = collapse)"),
}
KEPT_COLUMN = ("kept real/synth", "items of the training pool the filter let through: real / synthetic")


def legend(metrics: list[str]) -> list[str]:
    """One line per shown column."""
    return [f"{name}: {meaning}" for name, meaning in [KEPT_COLUMN, *(COLUMNS[m] for m in metrics)]]


def explanation(configs: list) -> list[str]:
    """Lines describing the resolved configurations of one run (`SimConfig`s)."""
    first = configs[0]
    lines = [_world(first), _sizes(first)]
    seen: list[str] = []
    for config in configs:
        for line in _filter_lines(config):
            if line not in seen:
                seen.append(line)
    lines += seen
    lines.append(_comparisons(configs))
    return lines


def _training(c) -> str:
    if c.train_epochs:
        return f"{c.train_epochs:g} epochs of its training pool"
    return f"{c.train_steps} training steps"


def _world(c) -> str:
    if c.model == "diffusion":
        return (
            f"World: images of {c.dataset}, published as files; backend: a class-conditional diffusion "
            f"model trained from scratch each generation (preset {c.diffusion_preset}, {_training(c)}, "
            f"guidance w = {c.guidance:g}, i.e. sampling bias λ = {c.bias:.3g})."
        )
    data = {"gaussian": f"{c.dim}-D standard Gaussian points", "grid25": "MAD's 2-D grid of 25 Gaussian modes"}
    source = data.get(c.data) or (
        f"{c.dim}-D PCA features of MNIST" if c.data.startswith("mnist:") else f"the feature matrix {c.data}"
    )
    backend = (
        "a Gaussian refit by maximum likelihood"
        if c.model == "gaussian"
        else f"a {c.components}-component Gaussian mixture (EM)"
    )
    return (
        f"World: {source} (a toy, no images); backend: {backend} each generation; sampling bias "
        f"λ = {c.bias:g} (MAD's λ: samples drawn with the covariance scaled by λ"
        + (", as cherry-picking or strong guidance do)." if c.bias < 1 else "; 1 = unbiased).")
        + " FID and PRDC are computed on the points themselves."
    )


def _sizes(c) -> str:
    return (
        f"Each generation trains on {c.samples_per_gen} items and draws as many; {c.generations} "
        f"generations after generation 0; {c.repeats} seed(s) per configuration; tables show means over seeds."
    )


def _filter_lines(c) -> list[str]:
    if c.filter == "none":
        return []
    if c.model == "diffusion":
        return [
            f"Filter {c.filter}: the audit's own {c.filter} detector(s) on the published files; "
            "their rates are measured against ground truth each generation (tpr_/fpr_ columns)."
            if c.filter != "oracle"
            else "Filter oracle: removes every synthetic item by ground truth."
        ]
    if c.filter == "oracle":
        return [
            "Filter oracle: removes every synthetic item by ground truth (TPR 1, FPR 0), the upper bound "
            "for any detector."
        ]
    head = (
        f"Filter {c.filter}: removes each synthetic item with probability TPR {c.filter_tpr:.3g} and each "
        f"real item with probability FPR {c.filter_fpr:.3g}"
    )
    if c.filter == "all":
        measured = dict((n, (t, f)) for n, t, f in c.filter_rates)
        parts = [
            f"{name} {_source(c, name, measured.get(name, DEFAULT_RATES[name]))}" for name in (c.union or DEFAULT_UNION)
        ]
        return [head + " (any of the detectors, assumed independent: " + "; ".join(parts) + ")."]
    return [head + f" ({_source(c, c.filter, (c.filter_tpr, c.filter_fpr))})."]


def _source(c, name: str, point: tuple[float, float]) -> str:
    measured = {n: (t, f) for n, t, f in c.filter_rates}
    rates = f"TPR {point[0]:.3g}, FPR {point[1]:.3g}"
    if name in measured and tuple(measured[name]) == tuple(point):
        origin = "the scan's calibration" if c.from_scan else "the --filter-rates file"
        return f"{rates}, measured: from {origin}"
    if tuple(point) == DEFAULT_RATES[name]:
        return f"{rates}, assumed default, not a measurement: give --filter-tpr/--filter-fpr or --filter-rates"
    return f"{rates}, set with --filter-tpr/--filter-fpr"


def _comparisons(configs: list) -> str:
    has_control = any(
        c.loop == "fresh" and c.contamination == 0 and c.filter == "none" and not c.reweight for c in configs
    )
    if not has_control:
        return "Comparisons: none added (--no-baseline); the verdict needs the all-real control."
    return (
        f"Comparisons: the all-real control trains on {configs[0].samples_per_gen} newly drawn real items "
        "each generation; each filtered or reweighted configuration runs beside its baseline, the same "
        "contamination without mitigation."
    )
