"""Generative backends behind the `GenerativeModel` protocol (loops/models/base.py)."""
from __future__ import annotations


def make_model(config, rngs):
    """The backend a resolved `SimConfig` names, drawing from the runs' generators `rngs`."""
    if config.model == "gaussian":
        from loops.models.gaussian import GaussianModel

        return GaussianModel(rngs, unbiased=config.unbiased)
    if config.model == "gmm":
        from loops.models.gmm import GMMModel

        return GMMModel(rngs, components=config.components)
    raise ValueError(f"unknown model {config.model!r}")
