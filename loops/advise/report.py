"""What `audit advise` writes: the table on stdout, advice.json, and report.html (the simulation
report of the recommended policy against the baseline and the all-real control at the point
estimate, headed by the advice)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.table import Table

from audit.atomic import write_atomically
from audit.report.strict_json import strict_json


def advice_table(advice) -> Table:
    """Every policy the search evaluated at the highest contamination, cheapest first."""
    s = advice.settings
    at = advice.binding
    chosen = advice.recommended.evaluated.policy if advice.recommended else None
    table = Table(
        title=f"policies searched at contamination {at.contamination:g} ({at.role}) on {s.base.repeats} "
        f"seeds, cheapest first; tolerance: {s.metric.upper()} loss ≤ {s.tolerance:.0%} against the "
        "all-real control at the upper 95 % bound",
        title_justify="left",
        caption=(
            f"cost per generation in fresh real items (prices: `audit advise --help`); loss: relative "
            f"{s.metric.upper()} change against the control (lower is better), mean and upper bound; "
            f"runs within: share of single seeds within tolerance; ★ recommended after verification "
            f"on {s.heldout.repeats} held-out seeds"
        ),
        caption_justify="left",
    )
    for column in (
        "policy",
        "cost ↓",
        "fresh real",
        "discarded (real)",
        "scanned",
        f"{s.metric.upper()} loss ↓",
        "upper",
        "runs within",
        "passes",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for e in at.evaluated:
        mark = "★ yes" if e.policy == chosen else ("yes" if e.quality.surely_within(s.tolerance) else "no")
        table.add_row(
            e.policy.name,
            f"{e.cost['cost']:.3g}",
            f"{e.cost['fresh_real']:.0f}",
            f"{e.cost['discarded']:.1f} ({e.cost['real_discarded']:.1f})",
            f"{e.cost['scanned']:.0f}",
            f"{e.quality.loss:+.1%}",
            f"{e.quality.upper:+.1%}",
            f"{e.quality.confidence:.0%}",
            mark,
        )
    return table


def write_advice(advice, out) -> None:
    """advice.json and report.html in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = advice.record()
    write_atomically(out / "advice.json", lambda p: p.write_text(strict_json(record, indent=1), encoding="utf-8"))
    _write_report(advice, record, out)


def _write_report(advice, record: dict, out: Path) -> None:
    """Simulate the control, the baseline and the recommended policy at the point estimate and write
    the usual simulation report with the advice at its head."""
    from loops.baselines import control_of
    from loops.config import labels, resolve
    from loops.outputs.summary import build_summary, write_outputs
    from loops.simulate import SimResult, run_loop

    base, at = advice.settings.base, advice.point
    if base.model != "diffusion":  # the headline figure shows quality (FID) and diversity (recall)
        base = replace(base, metrics=("fid", "prdc"))
    baseline = replace(base, contamination=at.contamination)
    configs = [control_of(base), baseline]
    if advice.recommended is not None:
        chosen = advice.recommended.evaluated.policy.config(base, at.contamination)
        configs += [chosen] if chosen not in configs else []
    configs = [resolve(c)[0] for c in configs]
    names = labels(configs)
    rows = [row for config, name in zip(configs, names) for row in run_loop(config, name)]
    summary = build_summary(configs, names, rows, advice.notes, advice.elapsed_s)
    summary["advice"] = record
    write_outputs(SimResult(configs, rows, summary, out))
