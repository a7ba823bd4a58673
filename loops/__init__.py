"""The simulation side of autophagy-audit: self-consuming training loops (see DESIGN.md).

The loop, backends and metrics arrive with the simulator issues; this package exists so the
distribution's layout (`audit` and `loops`) is fixed from the start.
"""
