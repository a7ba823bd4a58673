"""The policy space `audit advise` searches, and what each policy costs.

A policy is what a dataset builder can do about a contaminated scrape, generation after
generation: nothing; remove what a detector flags (each detector at its operating point, or their
union); replace a share f of each training pool with fresh, verified real data (the pool's
contamination c becomes (1 - f) c); accumulate every generation's data instead of replacing it;
or reweight the tails. Filters combine with a fresh share.

Costs are per generation, in the units of `Costs`: each fresh real item costs `fresh`, each image a
filter discards costs `discard` (a false positive throws away real data, a true positive a scraped
image). Discards are counted from the simulation's own rows (what the filter removed), so image
worlds, whose detectors are measured rather than assumed, are costed the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

NAMED_DETECTORS = ("watermark", "probe", "neardup")


@dataclass(frozen=True)
class Costs:
    fresh: float = 1.0     # per fresh, verified real item
    discard: float = 0.1   # per image a filter discards


@dataclass(frozen=True)
class Policy:
    filter: str = "none"
    fresh: float = 0.0
    loop: str = "fresh"
    reweight: str | None = None

    @property
    def name(self) -> str:
        parts = []
        if self.loop == "accumulate":
            parts.append("accumulate")
        if self.filter != "none":
            parts.append("filter " + ("all (any detector)" if self.filter == "all" else self.filter))
        if self.fresh:
            parts.append(f"fresh {self.fresh:.0%}")
        if self.reweight:
            parts.append(f"reweight {self.reweight}")
        return " + ".join(parts) or "no mitigation"

    def config(self, base, contamination: float):
        """The SimConfig that simulates this policy at the scrape's contamination."""
        mitigation = {"filter": self.filter, "filter_tpr": None, "filter_fpr": None, "reweight": self.reweight}
        if self.loop == "accumulate":
            return replace(base, loop="accumulate", contamination=None, **mitigation)
        return replace(base, loop="fresh", contamination=round((1 - self.fresh) * contamination, 4), **mitigation)


def fixed_policies(detectors: tuple[str, ...]) -> list[Policy]:
    """Every policy without a fresh share: nothing, each detector, their union, accumulate, tails."""
    filters = [Policy(filter=d) for d in detectors] + ([Policy(filter="all")] if len(detectors) > 1 else [])
    return [Policy(), *filters, Policy(loop="accumulate"), Policy(reweight="tails")]


def filter_families(detectors: tuple[str, ...]) -> list[str]:
    """The filters a fresh share is searched for: none, each detector, and their union."""
    return ["none", *detectors, *(["all"] if len(detectors) > 1 else [])]


def cost_of(policy: Policy, rows: list[dict], costs: Costs) -> dict:
    """Per generation (mean over generations >= 1 and seeds): fresh real items, images discarded, cost."""
    later = [r for r in rows if r["generation"] >= 1] or rows
    n = later[0]["samples_per_gen"]
    fresh = policy.fresh * n if policy.loop != "accumulate" else 0.0
    discarded = sum(r["pool_real"] + r["pool_synthetic"] - r["kept_real"] - r["kept_synthetic"] for r in later)
    real_lost = sum(r["pool_real"] - r["kept_real"] for r in later)
    discarded, real_lost = discarded / len(later), real_lost / len(later)
    return {"fresh_real": fresh, "discarded": discarded, "real_discarded": real_lost,
            "cost": costs.fresh * fresh + costs.discard * discarded}
