"""`audit advise`: the least costly data policy that keeps a model's quality at a given
contamination. policies.py: the policy space and its costs; quality.py: loss against the all-real
control, per seed; search.py: the coarse-to-fine search at one contamination; advisor.py:
`advise()` over the scan's estimate and interval; report.py: table, advice.json, report.html;
cli.py: the command. Python API: `loops.advise(...)`."""

from loops.advise.advisor import Advice, advise
from loops.advise.policies import Costs, Policy

__all__ = ["advise", "Advice", "Costs", "Policy"]
