"""The one-paragraph verdict of a simulation: how much quality and diversity the contamination cost
against the all-real control, and how much of the loss each mitigation recovers.

Read from the summary's curves: each metric's mean over seeds, averaged over the last quarter of
the generations (at least the final one), which steadies the toys' noisy FID. Quality is FID (W2 when FID was not
computed); diversity is the mean of recall and coverage relative to the control (the variance
ratio when PRDC was not computed). "Recovers Z %" is the share of the baseline's quality loss a
mitigation wins back: 100 % brings it to the control, 0 % changes nothing, below 0 makes it worse.
"""

from __future__ import annotations

from loops.baselines import NO_MITIGATION, role

QUALITY = ("fid", "w2")
DIVERSITY = (("recall", "coverage"), ("var_ratio",))
SETTING_FIELDS = ("label", "loop", "contamination", *NO_MITIGATION)
HELD = 0.02  # a quality change under 2 % is reported as "held", not as a loss to recover


def verdict(summary: dict) -> str:
    """One paragraph: a sentence per contaminated baseline and its mitigations."""
    configs = summary["configs"]
    final = _late_means(summary["curves"])
    sentences = []
    for base in (c for c in configs if role(c) == "baseline"):
        control = _match(configs, base, ("control",), _other_settings)
        if control is None:
            continue
        mitigations = [m for m in configs if role(m) == "mitigation" and _same_world(m, base)]
        sentences.append(_sentence(final, control, base, mitigations))
    if not sentences:
        return (
            "No verdict: this run has no all-real control to compare with "
            "(it was left out with --no-baseline, or every configuration is mitigated)."
        )
    return " ".join(sentences)


def _sentence(final: dict, control: dict, base: dict, mitigations: list[dict]) -> str:
    quality = next((m for m in QUALITY if m in final[base["label"]] and m in final[control["label"]]), None)
    span = final[base["label"]]["generation"]
    generation = span.split("-")[-1]
    where = _setting(base)
    if quality is None:
        return f"After {generation} generations {where}, no quality metric was computed."
    ctrl, got = _mean(final, control, quality), _mean(final, base, quality)
    loss = got / ctrl - 1 if ctrl else 0.0
    name = quality.upper()
    during = f", generations {span}" if "-" in span else ""
    text = (
        f"After {generation} generations {where}, quality {_quality_change(loss, name)}: "
        f"{name} {got:.3g} against {ctrl:.3g} for the all-real control{during}"
    )
    diversity = _diversity_loss(final, control, base)
    if diversity is not None:
        text += f"; diversity {_change(diversity[0], better='rose')} ({diversity[1]})"
    text += "."
    if mitigations and loss > HELD:
        parts = [_recovery(final, m, got, ctrl, quality) for m in mitigations]
        text += " " + ". ".join(parts) + "."
    elif mitigations:
        text += (
            " With no loss to recover, "
            + ", ".join(_mitigation_name(m) for m in mitigations)
            + " cannot improve on it here."
        )
    return text


def _recovery(final: dict, mitigation: dict, baseline: float, control: float, quality: str) -> str:
    value = _mean(final, mitigation, quality)
    share = (baseline - value) / (baseline - control)
    return f"{_mitigation_name(mitigation)[:1].upper()}{_mitigation_name(mitigation)[1:]} recovers {share:.0%} of that loss ({quality.upper()} {value:.3g})"


def _diversity_loss(final: dict, control: dict, base: dict) -> tuple[float, str] | None:
    """(relative loss, what it was measured with) or None."""
    for group in DIVERSITY:
        metrics = [m for m in group if m in final[base["label"]] and m in final[control["label"]]]
        if metrics:
            ratios = [_mean(final, base, m) / _mean(final, control, m) for m in metrics if _mean(final, control, m)]
            if ratios:
                return 1 - sum(ratios) / len(ratios), "/".join(metrics).replace("var_ratio", "variance ratio")
    return None


def _quality_change(loss: float, name: str) -> str:
    """FID/W2 grow as quality falls: "fell 54% (FID)" when FID is 1.54 times the control's."""
    if abs(loss) <= HELD:
        return f"held ({name} {loss:+.0%})"
    return f"{'fell' if loss > 0 else 'improved'} {abs(loss):.0%} ({name})"


def _change(loss: float, better: str = "improved") -> str:
    if abs(loss) <= HELD:
        return f"held ({-loss:+.0%})"
    return f"fell {loss:.0%}" if loss > 0 else f"{better} {-loss:.0%}"


def _setting(config: dict) -> str:
    if config["loop"] == "accumulate":
        return "of accumulating all data (synthetic share g/(g+1))"
    if config["loop"] == "fully-synthetic":
        return "of fully synthetic training"
    return f"at contamination {config['contamination']:g} ({config['loop']})"


def _mitigation_name(config: dict) -> str:
    parts = []
    if config.get("filter", "none") != "none":
        rates = (
            ""
            if config.get("filter_tpr") is None
            else f" (TPR {config['filter_tpr']:.2g}, FPR {config['filter_fpr']:.2g})"
        )
        parts.append(f"filter {config['filter']}{rates}")
    if config.get("reweight"):
        parts.append(f"reweighting {config['reweight']}")
    return " + ".join(parts)


def _late_means(curves: dict) -> dict:
    """{label: {metric: {"mean": ...}, "generation": "G0-G1"}} over the last quarter of generations."""
    out = {}
    for label, entry in curves.items():
        generations = entry["generation"]
        late = max(1, (len(generations) - 1) // 4)
        span = generations[-late:]
        out[label] = {"generation": f"{span[0]}-{span[-1]}" if late > 1 else str(span[-1])}
        for metric, values in entry.items():
            tail = [v for v in values["mean"][-late:] if v is not None] if metric != "generation" else []
            if tail:
                out[label][metric] = {"mean": sum(tail) / len(tail)}
    return out


def _mean(final: dict, config: dict, metric: str) -> float:
    return final[config["label"]][metric]["mean"]


def _other_settings(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in SETTING_FIELDS}


def _same_world(mitigation: dict, base: dict) -> bool:
    """The baseline of `mitigation`: everything equal but the mitigation."""
    keep = [k for k in mitigation if k not in ("label", *NO_MITIGATION)]
    return all(mitigation.get(k) == base.get(k) for k in keep)


def _match(configs: list[dict], base: dict, roles: tuple[str, ...], key) -> dict | None:
    return next((c for c in configs if role(c) in roles and key(c) == key(base)), None)
