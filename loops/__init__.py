"""The simulation side of autophagy-audit: self-consuming ("autophagous") training loops.

Python API: `loops.simulate(config=None, sweep=(), out=None, resume=False)` returns a `SimResult`
with the same rows and summary `audit simulate` writes; `SimConfig` holds one configuration.
`loops.advise(contamination or from_scan=..., ...)` returns an `Advice` (what `audit advise` prints
and writes): the least costly policy that keeps quality within a tolerance.
See DESIGN.md, "Data flow: simulate", and README.md, "Simulating self-consuming training".
"""

from loops.advise import Advice, advise  # noqa: F401  (the function shadows the package name)
from loops.config import SimConfig
from loops.simulate import SimResult, simulate  # noqa: F401  (the function shadows the module name)

__all__ = ["simulate", "SimConfig", "SimResult", "advise", "Advice"]
