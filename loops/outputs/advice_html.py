"""The advice section of report.html (`audit advise`): the conclusion, then per contamination the
policies evaluated, cheapest first, with the recommended one marked."""
from __future__ import annotations

from html import escape

from audit.report.page import cell, table


def advice_section(advice: dict | None) -> list[str]:
    if not advice:
        return []
    out = ["<h2>Advice: the least costly policy that keeps quality</h2>",
           f'<p class="verdict"><strong>Advice.</strong> {escape(advice["conclusion"])}</p>',
           f"<p>Costs per generation: {advice['costs']['fresh']:g} per fresh real item, "
           f"{advice['costs']['discard']:g} per discarded image. The curves below show the recommended "
           "policy against the baseline (no mitigation) and the all-real control at the point estimate.</p>"]
    for at in advice["contaminations"]:
        rows = [[cell(("★ " if p["policy"] == at["recommended"] else "") + p["policy"]),
                 cell(p["cost"], numeric=True), cell(p["fresh_real"], numeric=True),
                 cell(p["discarded"], numeric=True), cell(f"{p['quality_loss']:+.1%}", numeric=True),
                 cell(f"{p['confidence']:.0%}", numeric=True), cell("yes" if p["within_tolerance"] else "no")]
                for p in at["policies"]]
        out += [f"<h3>Contamination {at['contamination']:g} ({escape(at['role'])})</h3>",
                table(["policy", "cost", "fresh real", "discarded", f"{advice['metric'].upper()} loss",
                       "confidence", "within"], rows, table_id=f"advice-{at['contamination']:g}")]
    return out
