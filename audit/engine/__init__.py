"""The scan pipeline: `ScanConfig` (config.py), the batch processor run in worker processes
(batch.py), the local engine (local.py), the Ray engine (ray_engine.py), the resume journal
(journal.py) and the parts it commits (results_store.py), the end of a scan (finish.py) and what it
returns (result.py). Source -> batches of records -> detectors -> rows -> parts -> outputs."""

__all__ = ["ScanConfig", "ScanResult", "scan"]


def __getattr__(name: str):
    """Imported when first used, so a worker process that needs batch.py does not import the engine."""
    if name == "ScanConfig":
        from audit.engine.config import ScanConfig

        return ScanConfig
    if name == "scan":
        from audit.engine.local import scan

        return scan
    if name == "ScanResult":
        from audit.engine.result import ScanResult

        return ScanResult
    raise AttributeError(f"module 'audit.engine' has no attribute {name!r}")
