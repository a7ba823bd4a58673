"""The advice section of report.html (`audit advise`): the conclusion, then per contamination the
policies evaluated, cheapest first, with the recommended one marked."""

from __future__ import annotations

from html import escape

from audit.report.page import cell, table


def advice_section(advice: dict | None) -> list[str]:
    if not advice:
        return []
    out = [
        "<h2>Advice: the least costly policy that keeps quality</h2>",
        f'<p class="verdict"><strong>Advice.</strong> {escape(advice["conclusion"])}</p>',
        "<p>The curves below show the recommended policy against the baseline (no mitigation) and the "
        "all-real control at the point estimate.</p>",
        *_recommended(advice),
        *_costs(advice),
    ]
    for at in advice["contaminations"]:
        chosen = (advice.get("recommended") or {}).get("policy")
        rows = [
            [
                cell(("★ " if p["policy"] == chosen else "") + p["policy"]),
                cell(p["cost"], numeric=True),
                cell(p["fresh_real"], numeric=True),
                cell(p["discarded"], numeric=True),
                cell(p.get("scanned"), numeric=True),
                cell(f"{p['quality_loss']:+.1%}", numeric=True),
                cell(f"{p['quality_upper']:+.1%}", numeric=True),
                cell(f"{p['confidence']:.0%}", numeric=True),
                cell(p.get("seeds"), numeric=True),
                cell("yes" if p["within_tolerance"] else "no"),
            ]
            for p in at["policies"]
        ]
        what = "searched" if at.get("searched") else "verified candidates, held-out seeds"
        out += [
            f"<h3>Contamination {at['contamination']:g} ({escape(at['role'])}; {what})</h3>",
            table(
                [
                    "policy",
                    "cost",
                    "fresh real",
                    "discarded",
                    "scanned",
                    f"{advice['metric'].upper()} loss",
                    "upper bound",
                    "runs within",
                    "seeds",
                    "passes",
                ],
                rows,
                table_id=f"advice-{at['contamination']:g}",
            ),
        ]
    return out


def _recommended(advice: dict) -> list[str]:
    rec = advice.get("recommended")
    if not rec:
        return []
    rows = [
        [cell(k), cell(v if not isinstance(v, float) else f"{v:.4g}", numeric=True)]
        for k, v in [
            ("policy", rec["policy"]),
            ("loss, search seeds", rec["quality_loss"]),
            ("loss, held-out seeds", rec["heldout_quality_loss"]),
            ("upper 95 % bound, held-out", rec["heldout_upper"]),
            ("single runs within tolerance, held-out", rec["heldout_within_share"]),
            *((f"loss at contamination {c}", v) for c, v in rec["losses_by_contamination"].items()),
        ]
    ]
    return ["<h3>The recommendation, verified</h3>", table(["", "value"], rows, table_id="recommended")]


def _costs(advice: dict) -> list[str]:
    costs = advice["costs"]
    rows = [
        [cell(i["item"]), cell(i["price"], numeric=True), cell(i["unit"]), cell(i["option"])] for i in costs["items"]
    ]
    return [
        f"<h3>Costs (unit: {escape(costs['unit'])})</h3>",
        table(["what", "price", "unit", "option"], rows, table_id="costs"),
    ]
