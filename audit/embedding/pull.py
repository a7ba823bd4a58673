"""Named downloadable models (`audit models pull NAME`) and where they live.

- `univfd`: UnivFD's published linear head (MIT) for CLIP ViT-L/14, converted into the probe format,
  installed as a probe in $AUDIT_HOME/probes (default ~/.cache/autophagy-audit).
- the named ONNX image encoders of `encoders.py` (`clip-vit-b16-int8`), installed in $AUDIT_HOME/encoders
  and used with `--embedder onnx:NAME`.
"""

from __future__ import annotations

import tempfile
import urllib.request
from pathlib import Path

from audit.atomic import write_atomically
from audit.detectors.probe import UNIVFD_URL, convert_univfd
from audit.embedding.encoders import KNOWN_ENCODERS, audit_home, pull_encoder

KNOWN = {"univfd": UNIVFD_URL}
ALL_NAMES = (*KNOWN, *KNOWN_ENCODERS)


def models_home() -> Path:
    return audit_home() / "probes"


def resolve_probe(name_or_dir: str) -> str:
    """A probe folder: a path as given, or the folder of a pulled named model."""
    if name_or_dir in KNOWN:
        folder = models_home() / name_or_dir
        if not (folder / "probe.json").is_file():
            raise FileNotFoundError(f"probe {name_or_dir!r} is not installed; run `audit models pull {name_or_dir}`")
        return str(folder)
    return name_or_dir


def pull(name: str, local_file: str | None = None, timeout: float = 30.0) -> Path:
    """Download (or take `local_file`), check and install a named model; returns where it went."""
    if name in KNOWN_ENCODERS:
        return pull_encoder(name, local_file)
    if name not in KNOWN:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(ALL_NAMES)}")
    if local_file:
        return convert_univfd(local_file).save(models_home() / name)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "fc_weights.pth"
        try:
            with urllib.request.urlopen(KNOWN[name], timeout=timeout) as response:
                data = response.read()
            write_atomically(target, lambda p: p.write_bytes(data))
        except OSError as e:
            raise ConnectionError(
                f"cannot download {KNOWN[name]}: {e}. Download it on a machine with internet "
                f"and run `audit models pull {name} --from FILE`."
            ) from None
        return convert_univfd(target).save(models_home() / name)
