"""The MNIST study's verdicts: each seed-paper finding as that paper states it, judged on paired
per-seed statistics with bootstrap intervals over seeds (loops/metrics/paired.py).

The rules were written before the runs they judge (examples/mnist_loops.md, "Verdict rules"):
every ratio is paired by seed (same seed, same real draws) and read at the last generation unless
the finding is about a trend; "bounded" and "growing" are read on the slope of log FID over the
last half of the generations. A run whose FID sits at the metric's saturation level (uniform noise
scores about the same) cannot be ranked, so a trend read there is "cannot tell (saturated)".
"""

from __future__ import annotations

import numpy as np

from loops.metrics.paired import (
    GROWTH,
    MIN_SEEDS,
    Interval,
    bootstrap_mean,
    growth_reading,
    last_half_slope,
    paired_difference,
    paired_log_ratio,
)

CONTROL = "fresh-c0"
REPLACE = "fresh-c1"  # fully synthetic: each generation replaces the data with its own samples
SWEEP = (0.2, 0.4, 0.6, 0.8, 1.0)
NEAR_CONTROL = 1.5  # "near the control": FID under 1.5x the control's
FLOOR_LIMIT = 2.0  # generation 0 must be within 2x the real-vs-real floor
SATURATED = 0.8  # FID above 0.8x the uniform-noise FID cannot be ranked
RECALL_SATURATED = 0.05  # uniform noise scores recall 0: below 0.05 a further fall cannot show
GUIDED = "fresh-c1-w2"  # c = 1 at guidance w = 2, against REPLACE (w = 0)
HALF_GUIDED = "fresh-c1-w1"
# each filter at c = 0.4, at its two operating points, and the unfiltered run on the same internet:
# JPEG q75 + resize 1/2 reach real and synthetic files alike, so the weaker point has its own reference
UNFILTERED, UNFILTERED_TRANSFORMED = "fresh-c0.4", "fresh-c0.4-jpeg75-resize0.5"
FILTERS = {
    "fresh-c0.4-filter-watermark": UNFILTERED,
    "fresh-c0.4-filter-watermark-jpeg75-resize0.5": UNFILTERED_TRANSFORMED,
    "fresh-c0.4-filter-all-bank0.25": UNFILTERED,
    "fresh-c0.4-filter-all-bank0.9-jpeg75-resize0.5": UNFILTERED_TRANSFORMED,
}


def _name(c: float) -> str:
    return f"fresh-c{c:g}"


class Table:
    """Rows (config, seed, generation, metrics...) indexed for per-seed look-ups."""

    def __init__(self, rows: list[dict]):
        self.at = {(r["config"], r["seed"], r["generation"]): r for r in rows}
        self.last = max((r["generation"] for r in rows), default=0)

    def per_seed(self, config: str, metric: str, generation: int | None = None) -> dict[int, float]:
        """seed -> the metric's value (seeds where it is missing or not finite left out)."""
        g = self.last if generation is None else generation
        values = {s: r.get(metric, np.nan) for (c, s, gen), r in self.at.items() if c == config and gen == g}
        return {s: v for s, v in values.items() if np.isfinite(v)}

    def series(self, config: str, seed: int, metric: str = "fid") -> list[float]:
        return [self.at[(config, seed, g)][metric] for g in range(self.last + 1) if (config, seed, g) in self.at]

    def slopes(self, config: str) -> dict[int, float]:
        seeds = {s for (c, s, g) in self.at if c == config and g == self.last}
        return {s: last_half_slope(self.series(config, s)) for s in sorted(seeds)}


def _verdict(finding: str, source: str, verdict: str, evidence: str, rule: str) -> dict:
    return {"finding": finding, "source": source, "verdict": verdict, "evidence": evidence, "rule": rule}


def _ratio_text(i: Interval) -> str:
    return i.text(".2f", np.exp) + f" ({_seeds(i.seeds)})" if i.seeds else "not run"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' * (n != 1)}"


def _ratio_finding(
    t: Table, finding: str, source: str, config: str, reference: str, threshold: float, claim: str, metric: str = "fid"
) -> dict:
    ratio = paired_log_ratio(t.per_seed(config, metric), t.per_seed(reference, metric))
    verdict = ratio.reading(np.log(threshold), claim) if ratio.seeds else "cannot tell (not run)"
    rule = f"{metric} ratio {config} / {reference} at g{t.last} {'>' if claim == 'above' else '<'} {threshold:g}"
    return _verdict(finding, source, verdict, f"ratio {_ratio_text(ratio)}", rule)


def _saturated(t: Table, config: str, saturation: float | None) -> bool:
    if not saturation:
        return False
    fids = t.per_seed(config, "fid")
    return bool(fids) and np.mean(list(fids.values())) > SATURATED * saturation


def _growth(t: Table, config: str, saturation: float | None) -> tuple[str, Interval]:
    slope = bootstrap_mean(t.slopes(config).values())
    if not slope.seeds:
        return "cannot tell (not run)", slope
    if _saturated(t, config, saturation):
        return "cannot tell (saturated)", slope
    return growth_reading(slope), slope


def accumulate_bounded(t: Table, saturation: float | None) -> dict:
    """Gerstgrasser et al.: accumulating keeps the error bounded where replacing makes it grow."""
    accumulate, a_slope = _growth(t, "accumulate", saturation)
    replace, r_slope = _growth(t, REPLACE, saturation)
    if accumulate == "growing":
        verdict = "not reproduced"
    elif accumulate == "bounded" and replace == "growing":
        verdict = "reproduced"
    else:
        verdict = "cannot tell"
    evidence = (
        f"slope of log FID over the last half: accumulate {a_slope.text('.3f')} ({accumulate}), "
        f"replace {r_slope.text('.3f')} ({replace})"
    )
    return _verdict(
        "Accumulating data keeps the error bounded where replacing it makes it grow",
        "Gerstgrasser et al. 2024",
        verdict,
        evidence,
        f"bounded: slope interval under {GROWTH}; growing: over it; reproduced when accumulate "
        "is bounded and replace grows",
    )


def control_bounded(t: Table, saturation: float | None) -> dict:
    reading, slope = _growth(t, CONTROL, saturation)
    verdict = {"bounded": "reproduced", "growing": "not reproduced"}.get(reading, reading)
    return _verdict(
        "The c = 0 control does not drift (the loop machinery alone keeps FID bounded)",
        "control",
        verdict,
        f"slope of log FID over the last half {slope.text('.3f')}",
        f"slope interval under {GROWTH} per generation",
    )


def diversity_first(t: Table) -> dict:
    difference = paired_difference(t.per_seed(REPLACE, "recall"), t.per_seed(CONTROL, "recall"), scale=0.5)
    verdict = difference.reading(0.0, "below") if difference.seeds else "cannot tell (not run)"
    return _verdict(
        "Diversity is lost: recall falls below half of the control's in a fully synthetic loop",
        "MAD (Alemohammad et al.), Shumailov et al.",
        verdict,
        f"recall - 0.5 x control's recall {difference.text('.2f')}",
        "paired difference recall(c=1) - 0.5 recall(control) < 0",
    )


def dose_response(t: Table) -> dict:
    from scipy.stats import spearmanr

    seeds = sorted(set(t.per_seed(CONTROL, "fid")))
    correlations = []
    for s in seeds:
        points = [(c, t.per_seed(_name(c), "fid").get(s, np.nan)) for c in (0.0, *SWEEP)]
        points = [(c, f) for c, f in points if np.isfinite(f)]
        correlations.append(float(spearmanr(*zip(*points)).statistic) if len(points) >= 3 else np.nan)
    rho = bootstrap_mean(correlations)
    verdict = rho.reading(0.9, "above") if rho.seeds else "cannot tell (not run)"
    return _verdict(
        "More synthetic data, more drift: FID rises with c across the sweep",
        "MAD, Martínez et al.",
        verdict,
        f"Spearman's rho of FID on c {rho.text('.2f')}",
        "mean rank correlation > 0.9",
    )


def stability_threshold(t: Table) -> dict:
    """Bertrand et al.: below some contamination the loop stays near the all-real one. Judged on
    the contaminations that ran with at least MIN_SEEDS seeds; the others are listed, not judged."""
    readings, pending = [], []
    for c in SWEEP:
        ratio = paired_log_ratio(t.per_seed(_name(c), "fid"), t.per_seed(CONTROL, "fid"))
        if ratio.seeds >= MIN_SEEDS:
            readings.append((c, ratio.reading(np.log(NEAR_CONTROL), "below"), ratio))
        elif ratio.seeds:
            pending.append((c, ratio))
    if not readings:
        verdict = "cannot tell (not run)"
    elif any(r == "reproduced" for _, r, _ in readings):
        verdict = "reproduced"
    elif all(r == "not reproduced" for _, r, _ in readings):
        verdict = "not reproduced"
    else:
        verdict = "cannot tell"
    evidence = "; ".join(f"c = {c:g}: ratio {_ratio_text(i)}" for c, _, i in readings)
    if pending:
        evidence += "; not judged yet: " + ", ".join(f"c = {c:g} ({_seeds(i.seeds)})" for c, i in pending)
    return _verdict(
        "A stability threshold: some c > 0 keeps FID near the control's",
        "Bertrand et al. 2024",
        verdict,
        evidence,
        f"some c > 0 run with {MIN_SEEDS}+ seeds with FID ratio to the control < {NEAR_CONTROL:g}",
    )


def _unsaturated_generation(t: Table, configs: tuple[str, ...]) -> int | None:
    """The last generation at which every config's mean recall is above recall's saturation: where a
    fall in recall can still show (None when even generation 0 is saturated or nothing ran)."""
    readable = [
        g
        for g in range(t.last + 1)
        if all((r := t.per_seed(c, "recall", g)) and np.mean(list(r.values())) >= RECALL_SATURATED for c in configs)
    ]
    return max(readable, default=None)


def _guidance_differences(t: Table, guided: str, g: int) -> tuple[Interval, Interval]:
    return tuple(
        paired_difference(t.per_seed(guided, m, g), t.per_seed(REPLACE, m, g)) for m in ("recall", "precision")
    )


def guidance_tradeoff(t: Table) -> dict:
    rule = (
        f"paired recall difference < 0 and precision difference > 0 (c = 1, w = 2 vs w = 0), read at the last "
        f"generation where both arms' mean recall is >= {RECALL_SATURATED:g}"
    )
    finding = "Guidance (w = 2) trades diversity for fidelity: recall down, precision up against w = 0"
    source = "MAD (sampling bias), Martínez et al."
    g = _unsaturated_generation(t, (GUIDED, REPLACE))
    if g is None:
        ran = t.per_seed(GUIDED, "recall", 0)
        return _verdict(finding, source, "cannot tell (saturated)" if ran else "cannot tell (not run)", "", rule)
    recall, precision = _guidance_differences(t, GUIDED, g)
    readings = {recall.reading(0.0, "below"), precision.reading(0.0, "above")}
    verdict = readings.pop() if len(readings) == 1 else "cannot tell"
    evidence = [f"g{g}: recall difference {recall.text('.2f')}, precision difference {precision.text('.2f')}"]
    if t.per_seed(HALF_GUIDED, "recall", g):
        w1_recall, w1_precision = _guidance_differences(t, HALF_GUIDED, g)
        evidence.append(
            f"w = 1 at g{g}: recall {w1_recall.text('.2f')}, precision {w1_precision.text('.2f')} "
            f"({_seeds(w1_recall.seeds)})"
        )
    return _verdict(finding, source, verdict, "; ".join(evidence), rule)


def _mean(t: Table, config: str, metric: str) -> str:
    values = list(t.per_seed(config, metric).values())
    return f"{np.mean(values):.2f}" if values else "n/a"


def filter_helps(t: Table, config: str, reference: str) -> dict:
    """Filtering the pool with the scan's detectors lowers FID against no filter on the same internet."""
    found = _ratio_finding(
        t,
        f"Filtering helps: {config} has a lower FID than {reference}",
        "the tool's premise (filter a scrape before training on it)",
        config,
        reference,
        1.0,
        "below",
    )
    recall = paired_difference(t.per_seed(config, "recall"), t.per_seed(reference, "recall"))
    found["evidence"] += (
        f", recall difference {recall.text('.3f')}; the filter's TPR {_mean(t, config, 'tpr_filter')}, FPR "
        f"{_mean(t, config, 'fpr_filter')}; synthetic share of the kept pool {_mean(t, config, 'kept_synthetic_share')} "
        f"against {_mean(t, reference, 'kept_synthetic_share')}"
    )
    return found


def generation_zero(t: Table, floor: float | None) -> dict:
    """A precondition, so 'met' or 'not met'. Every loop's generation 0 trains on real data alone; the
    first of the control, the unguided fully synthetic loop and the unfiltered c = 0.4 loop that ran is read."""
    ran = (t.per_seed(config, "fid", generation=0) for config in (CONTROL, REPLACE, UNFILTERED))
    fids = next((f for f in ran if f), {})
    if not floor:
        return _verdict("Generation 0 within 2x the FID floor", "study precondition", "cannot tell (no floor)", "", "")
    ratio = bootstrap_mean([np.log(f / floor) for f in fids.values()])
    reading = ratio.reading(np.log(FLOOR_LIMIT), "below") if ratio.seeds else "cannot tell (not run)"
    worst = f", worst seed {max(fids.values()) / floor:.2f}" if fids else ""
    return _verdict(
        f"Generation 0 within {FLOOR_LIMIT:g}x the FID floor (real vs real, {floor:.2f})",
        "study precondition",
        {"reproduced": "met", "not reproduced": "not met"}.get(reading, reading),
        f"FID g0 / floor {_ratio_text(ratio)}{worst}",
        f"g0 FID / floor < {FLOOR_LIMIT:g}",
    )


def verdicts(rows: list[dict], floor: float | None = None, saturation: float | None = None) -> list[dict]:
    """Each finding the runs can speak to; `floor` and `saturation` are the real-vs-real and
    uniform-noise FIDs of the metric validation (None when it has not run)."""
    t = Table(rows)
    return [
        generation_zero(t, floor),
        _ratio_finding(
            t,
            "A fully synthetic loop degrades: FID above the all-real control's",
            "MAD (Alemohammad et al.), Shumailov et al., Martínez et al.",
            REPLACE,
            CONTROL,
            1.0,
            "above",
        ),
        diversity_first(t),
        control_bounded(t, saturation),
        _ratio_finding(
            t,
            "Enough fresh real data keeps the loop near the control: at c = 0.4, FID under 1.5x the control's",
            "MAD (fresh-data loop)",
            _name(0.4),
            CONTROL,
            NEAR_CONTROL,
            "below",
        ),
        dose_response(t),
        stability_threshold(t),
        _ratio_finding(
            t,
            "Accumulating mitigates: FID of accumulate below the fully synthetic (replace) loop's",
            "Gerstgrasser et al. 2024",
            "accumulate",
            REPLACE,
            1.0,
            "below",
        ),
        accumulate_bounded(t, saturation),
        guidance_tradeoff(t),
        *(filter_helps(t, config, reference) for config, reference in FILTERS.items()),
    ]


def verdicts_markdown(rows: list[dict], floor: float | None = None, saturation: float | None = None) -> str:
    lines = [
        "Intervals: 95 % percentile bootstrap of the mean over seeds (paired by seed). Ratios are geometric means.",
        "",
        "| finding | source | verdict | evidence | rule |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {v['finding']} | {v['source']} | **{v['verdict']}** | {v['evidence']} | {v['rule']} |"
        for v in verdicts(rows, floor, saturation)
    ]
    return "\n".join(lines) + "\n"
