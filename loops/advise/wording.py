"""The advice in words: what to do, why it can be trusted (held-out seeds, every contamination the
estimate allows), and, when nothing holds, what holds at each end and up to where."""

from __future__ import annotations

from loops.advise.quality import LOWER_IS_BETTER


def conclusion(advice) -> str:
    s = advice.settings
    direction = "above" if LOWER_IS_BETTER[s.metric] else "below"
    keep = (
        f"keeps {s.metric.upper()} within {s.tolerance:.0%} {direction} the all-real control over "
        f"{s.base.generations} generations"
    )
    where = _where(advice)
    rec = advice.recommended
    if rec is not None:
        held = rec.binding.quality
        cost = rec.cost_at(advice.point.contamination)["cost"]
        losses = ", ".join(f"{c:g}: {e.quality.loss:+.1%}" for c, e in sorted(rec.heldout.items()))
        return (
            f"{where}, the cheapest policy that {keep} is: {rec.evaluated.policy.name} (cost {cost:.3g} per "
            f"generation, in fresh real items). Verified on {held.seeds} held-out seeds the search never "
            f"used: loss {held.loss:+.1%} at {max(rec.heldout):g} (upper 95 % bound {held.upper:+.1%}; "
            f"{held.confidence:.0%} of single runs within tolerance); loss by contamination {losses}."
        )
    if not advice.verified:
        reason = "no policy searched keeps quality within tolerance at its upper bound" + (
            f" for at most {s.max_cost:g} per generation" if s.max_cost is not None else ""
        )
    else:
        tried = "; ".join(
            f"{v.evaluated.policy.name}: {', '.join(v.failures(s, advice.point.contamination))}"
            for v in advice.verified
        )
        reason = f"no candidate held on the held-out seeds ({tried})"
    text = f"{where}: no recommendation, {reason}."
    for end in advice.per_end:
        if end["policy"] is None:
            text += f" At {end['contamination']:g} ({end['role']}) nothing affordable holds."
        else:
            upto = (
                f"stays safe up to contamination {end['safe_up_to']:g}"
                if end["safe_up_to"] is not None
                else "does not hold on re-check"
            )
            text += (
                f" At {end['contamination']:g} ({end['role']}): {end['policy']} (cost {end['cost']:.3g}), which {upto}."
            )
    return text


def _where(advice) -> str:
    results = sorted(advice.results, key=lambda r: r.contamination)
    if len(results) == 1:
        return f"At contamination {results[0].contamination:g} ({results[0].role})"
    parts = ", ".join(f"{r.contamination:g} ({r.role})" for r in results)
    return f"Across every contamination the estimate allows ({parts})"
