"""autophagy-audit: find AI-generated images in training data and estimate their share.

Python API: `audit.scan(source, out=None, config=ScanConfig(...))` returns a `ScanResult` with the
same rows and summary the CLI writes; `audit.calibrate(real, synthetic, out)` measures the
detectors' operating points on labelled data; `audit.iter_records(spec)` reads any source.
Packages, bottom up: sources, detectors, bank, embedding, engine, report; estimate.py and
calibrate.py beside them; cli.py on top.
"""

__all__ = ["scan", "calibrate", "ScanConfig", "ScanResult", "iter_records", "ImageRecord", "SourceError"]


def __getattr__(name: str):
    """The API's names, imported when first used: a scan's worker processes import only the modules
    their work needs, not the whole package (`import audit` stays cheap)."""
    if name == "calibrate":
        from audit.calibrate import calibrate

        globals()["calibrate"] = calibrate  # the function shadows the module of the same name
        return calibrate
    if name in ("scan", "ScanConfig", "ScanResult"):
        from audit import engine

        return getattr(engine, name)
    if name in ("iter_records", "ImageRecord", "SourceError"):
        from audit import sources

        return getattr(sources, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
