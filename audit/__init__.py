"""autophagy-audit: find AI-generated images in training data and estimate their share.

Python API: `audit.scan(source, out=None, config=ScanConfig(...))` returns a `ScanResult` with the
same rows and summary the CLI writes; `audit.calibrate(real, synthetic, out)` measures the
detectors' operating points on labelled data; `audit.iter_records(spec)` reads any source.
Packages, bottom up: sources, detectors, bank, embedding, engine, report; estimate.py and
calibrate.py beside them; cli.py on top.
"""
from audit.calibrate import calibrate  # noqa: F401  (the function shadows the module name)
from audit.engine import ScanConfig, ScanResult, scan
from audit.sources import ImageRecord, SourceError, iter_records

__all__ = ["scan", "calibrate", "ScanConfig", "ScanResult", "iter_records", "ImageRecord", "SourceError"]
