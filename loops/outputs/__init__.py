"""What a simulation writes: the summary and metrics files (summary.py), curves.png (curves.py),
report.html (html.py) and per-generation checkpoints for resuming (checkpoint.py)."""
