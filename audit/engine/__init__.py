"""The scan pipeline: `ScanConfig` (config.py), the batch processor run in worker processes
(batch.py), the local engine (local.py), the Ray engine (ray_engine.py) and the resume journal
(journal.py). Source -> batches of records -> detectors -> rows -> summary and outputs."""
from audit.engine.config import ScanConfig
from audit.engine.local import ScanResult, scan

__all__ = ["ScanConfig", "ScanResult", "scan"]
