"""Is the Hugging Face Hub reachable right now? Asked once, quickly, before any download, so an
offline machine gets one clear message instead of minutes of the hub client's retries."""

from __future__ import annotations

import os
import socket

OFFLINE_VALUES = ("1", "true", "True", "yes", "ON", "on")


def hub_offline_requested() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") in OFFLINE_VALUES


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when HF_HUB_OFFLINE is set or huggingface.co cannot be connected to within `timeout`."""
    if hub_offline_requested():
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False
