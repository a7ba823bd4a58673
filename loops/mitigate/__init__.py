"""Mitigations: filters that decide which items of a training pool reach the model, by operating
point or by the real detectors' flags (filters.py, with the default operating points), and tail
reweighting by k-NN density (reweight.py)."""

from loops.mitigate.filters import FlagFilter, OperatingPointFilter
from loops.mitigate.reweight import tail_weights

__all__ = ["FlagFilter", "OperatingPointFilter", "tail_weights"]
