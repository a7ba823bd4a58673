"""The scan pipeline: `ScanConfig` (config.py), the batch processor run in worker processes
(batch.py), the local engine (local.py), the Ray engine (ray_engine.py), the resume journal
(journal.py) and the parts it commits (results_store.py), the end of a scan (finish.py) and what it
returns (result.py). Source -> batches of records -> detectors -> rows -> parts -> outputs."""
from audit.engine.config import ScanConfig
from audit.engine.local import scan
from audit.engine.result import ScanResult

__all__ = ["ScanConfig", "ScanResult", "scan"]
