"""The comparisons every `audit simulate` run carries: the all-real control and the no-mitigation
baseline.

The control trains on real data only (`fresh` at contamination 0: n newly drawn real items each
generation), so it shows what the model loses by itself (finite samples, sampling bias). The
baseline of a mitigated configuration (a filter or reweighting) is the same configuration
without the mitigation: what the contamination does when nothing is done about it.
"""

from __future__ import annotations

from dataclasses import replace

NO_MITIGATION = {"filter": "none", "filter_tpr": None, "filter_fpr": None, "reweight": None}


def baseline_of(config):
    """The configuration without its filter and reweighting."""
    return replace(config, **NO_MITIGATION)


def control_of(config):
    """All real data each generation, everything else (backend, size, bias, seeds) the same."""
    return replace(config, loop="fresh", contamination=0.0, **NO_MITIGATION)


def with_baselines(configs: list) -> list:
    """The control(s) first, then each configuration preceded by its baseline (duplicates kept out)."""
    out: list = []
    for config in [control_of(c) for c in configs] + [b for c in configs for b in (baseline_of(c), c)]:
        if config not in out:
            out.append(config)
    return out


def role(config: dict) -> str:
    """ "control", "baseline" (no mitigation) or "mitigation", from a resolved configuration's dict."""
    mitigated = config.get("filter", "none") != "none" or config.get("reweight")
    if mitigated:
        return "mitigation"
    if config.get("loop") == "fresh" and config.get("contamination") == 0:
        return "control"
    return "baseline"
