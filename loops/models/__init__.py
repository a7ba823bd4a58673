"""Generative backends behind the `GenerativeModel` protocol (loops/models/base.py)."""

from __future__ import annotations


def make_model(config, rngs, data=None, fit_cache=None):
    """The backend a resolved `SimConfig` names, drawing from the runs' generators `rngs`
    (`data`: the image dataset, for the diffusion backend's classes; `fit_cache`: a folder where the
    diffusion backend keeps its first fits, so generation 0 of another run with the same seed, items
    and settings is loaded, not trained again)."""
    if config.model == "gaussian":
        from loops.models.gaussian import GaussianModel

        return GaussianModel(rngs, unbiased=config.unbiased)
    if config.model == "gmm":
        from loops.models.gmm import GMMModel

        return GMMModel(rngs, components=config.components)
    if config.model == "diffusion":
        from dataclasses import replace

        from loops.models.diffusion import PRESETS, DiffusionModel

        preset = replace(
            PRESETS[config.diffusion_preset],
            train_steps=config.train_steps,
            train_epochs=config.train_epochs,
            sample_steps=config.sample_steps,
        )
        from loops.models.fit_cache import FitCache

        cache = FitCache(fit_cache) if fit_cache is not None else None
        return DiffusionModel(
            rngs, preset, data.classes, guidance=config.guidance, device=config.device, fit_cache=cache
        )
    raise ValueError(f"unknown model {config.model!r}")
