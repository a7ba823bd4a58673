"""`ConfigError`: simulation settings that cannot run. Below every other module of loops, so
filters, datasets and readers can raise it without importing the configuration."""

from __future__ import annotations


class ConfigError(ValueError):
    """Settings that cannot run; the message says which option and why."""
