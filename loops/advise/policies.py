"""The policy space `audit advise` searches, and what each policy costs.

A policy is what a dataset builder can do about a contaminated scrape, generation after
generation: nothing; remove what a detector flags (each detector at its operating point, or their
union); replace a share f of each training pool with fresh, verified real data (the pool's
contamination c becomes (1 - f) c); accumulate every generation's data instead of replacing it;
or reweight the tails. Filters combine with a fresh share.

Costs are per generation, in one unit: the price of one fresh, verified real item (`Costs.fresh`
defaults to 1, so every other price reads as a share of it). What is counted comes from the
simulation's own rows: fresh items bought, real and synthetic items a filter discarded (a false
positive throws away real data, a true positive a scraped image), items scanned by each detector
a filter runs, and the growth of an accumulated pool (items trained on and stored beyond the n of
a replaced pool). Image worlds, whose detectors are measured rather than assumed, are costed the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

NAMED_DETECTORS = ("watermark", "probe", "neardup")


@dataclass(frozen=True)
class Costs:
    """Prices per item and generation, in units of one fresh, verified real item."""

    fresh: float = 1.0  # buying one fresh, verified real item
    discard_real: float = 0.2  # a real item a filter throws away (scraped data lost)
    discard_synthetic: float = 0.02  # a synthetic item a filter throws away (what scraping it cost)
    scan: float = 0.01  # one detector run on one item
    train: float = 0.01  # training compute for one item beyond the pool size n, per generation
    store: float = 0.001  # storing one item beyond the pool size n, per generation

    def table(self) -> list[dict]:
        """What each price is, its unit and the option that sets it (advice.json, report.html)."""
        return [
            {"item": item, "price": getattr(self, name), "unit": unit, "option": f"--cost-{name.replace('_', '-')}"}
            for name, item, unit in COST_ITEMS
        ]


COST_ITEMS = (
    ("fresh", "buying one fresh, verified real item", "per item"),
    ("discard_real", "a real item a filter discards", "per item"),
    ("discard_synthetic", "a synthetic item a filter discards", "per item"),
    ("scan", "scanning one item with one detector", "per item and detector"),
    ("train", "training on one item beyond the pool size n (accumulate's growth)", "per item and generation"),
    ("store", "storing one item beyond the pool size n (accumulate's growth)", "per item and generation"),
)


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

    def detectors_run(self, union: tuple[str, ...]) -> int:
        """How many detectors scan each item."""
        return 0 if self.filter == "none" else (len(union) if self.filter == "all" else 1)


def fixed_policies(detectors: tuple[str, ...]) -> list[Policy]:
    """Every policy without a fresh share: nothing, each detector, their union, accumulate, tails."""
    filters = [Policy(filter=d) for d in detectors] + ([Policy(filter="all")] if len(detectors) > 1 else [])
    return [Policy(), *filters, Policy(loop="accumulate"), Policy(reweight="tails")]


def filter_families(detectors: tuple[str, ...]) -> list[str]:
    """The filters a fresh share is searched for: none, each detector, and their union."""
    return ["none", *detectors, *(["all"] if len(detectors) > 1 else [])]


def cost_of(policy: Policy, rows: list[dict], costs: Costs, union: tuple[str, ...] = NAMED_DETECTORS) -> dict:
    """Per generation (mean over generations >= 1 and seeds): what is bought, discarded, scanned and
    grown, each part's cost and the total `cost`."""
    later = [r for r in rows if r["generation"] >= 1] or rows
    n = later[0]["samples_per_gen"]
    fresh = policy.fresh * n if policy.loop != "accumulate" else 0.0
    pool = _mean(later, lambda r: r["pool_real"] + r["pool_synthetic"])
    real_lost = _mean(later, lambda r: r["pool_real"] - r["kept_real"])
    synthetic_lost = _mean(later, lambda r: r["pool_synthetic"] - r["kept_synthetic"])
    scanned = pool * policy.detectors_run(union)
    grown = max(0.0, pool - n)
    parts = {
        "cost_fresh": costs.fresh * fresh,
        "cost_discard": costs.discard_real * real_lost + costs.discard_synthetic * synthetic_lost,
        "cost_scan": costs.scan * scanned,
        "cost_growth": (costs.train + costs.store) * grown,
    }
    return {
        "fresh_real": fresh,
        "discarded": real_lost + synthetic_lost,
        "real_discarded": real_lost,
        "synthetic_discarded": synthetic_lost,
        "scanned": scanned,
        "pool_growth": grown,
        **parts,
        "cost": sum(parts.values()),
    }


def _mean(rows: list[dict], value) -> float:
    return sum(value(r) for r in rows) / len(rows)
