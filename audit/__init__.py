"""autophagy-audit: find AI-generated images in training data and estimate their share.

Python API: `audit.scan(source, out=None, config=ScanConfig(...))` returns a `ScanResult`
with the same rows and summary the CLI writes.
"""
from audit.scan import ScanConfig, ScanResult, scan  # noqa: F401  (the function shadows the module name)

__all__ = ["scan", "ScanConfig", "ScanResult"]
