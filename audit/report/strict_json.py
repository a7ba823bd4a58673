"""Standard JSON for every file the tools write: NaN and infinities become null (Python's json
would write bare NaN, which strict readers refuse)."""

from __future__ import annotations

import json
import math


def finite(obj):
    """`obj` with every non-finite float replaced by None, through dicts, lists and tuples."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def strict_json(obj, indent: int | None = 2) -> str:
    """`obj` as standard JSON text, ending with a newline."""
    return json.dumps(finite(obj), indent=indent, allow_nan=False) + "\n"
