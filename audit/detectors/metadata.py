"""Hard evidence from provenance metadata that names the generator of an image.

Looked at, in this order: PNG text chunks written by generator front-ends (A1111,
ComfyUI, InvokeAI, NovelAI, Fooocus), NovelAI's "stealth" payload in the alpha
channel's least significant bits, EXIF (Fooocus `Software`, SD parameters in
`UserComment`), the XMP field `Iptc4xmpExt:DigitalSourceType`, and C2PA manifests
(read offline: remote manifests and OCSP are never fetched).

None of this metadata is signed except C2PA, and even a C2PA manifest is reported
whatever its validation state, because the claim itself is what matters here. Camera
and editor metadata (Make/Model, Photoshop, GIMP, a camera's C2PA manifest) is never
evidence; only a generator's own marks or an AI digital source type are.

A finding names the tool that wrote the metadata (ComfyUI, AUTOMATIC1111, a C2PA claim generator,
...) and the model names it holds; the signal's `generator` is their model family
(`model_families`), `tool` the tool.
"""

from __future__ import annotations

import functools
import io
import json
import re
import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from audit.detectors.base import NEEDS_BYTES, NEEDS_PIXELS, NO_EVIDENCE, SYNTHETIC, Signal, not_applicable
from audit.detectors.model_families import checkpoint_of_hash, family_of
from audit.sources import ImageRecord
from audit.sources.decode import DecodedImage

# IPTC digital source types that mean "made (partly) by a generative model". Plain
# `algorithmicMedia` (procedural images, no training data) is deliberately not here.
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})

# Lower-case fragments of C2PA claim generator names of AI image services.
AI_CLAIM_GENERATORS = (
    "openai",
    "dall-e",
    "dall·e",
    "chatgpt",
    "firefly",
    "midjourney",
    "imagen",
    "gemini",
    "stability ai",
    "bing image creator",
    "microsoft responsible ai",
)

STEALTH_MAGICS = (b"stealth_pnginfo", b"stealth_pngcomp")  # plain, gzip
MAX_PAYLOAD_BYTES = 1 << 20
MAX_DETAIL_CHARS = 60
MAX_MODELS = 3


class Finding(NamedTuple):
    """tool: the front-end or mark that wrote the metadata; models: the model names it holds (for
    the family, see model_families)."""

    tool: str
    evidence: str
    models: tuple[str, ...] = ()


# --- small text helpers ------------------------------------------------------------------


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _json_object(text) -> dict | None:
    """`text` parsed as a JSON object, or None (not a string, not JSON, not an object)."""
    if not isinstance(text, (str, bytes)):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def looks_like_sd_parameters(text: str) -> bool:
    """A1111-style generation parameters ("... Steps: 20, Sampler: Euler a, CFG scale: 7, ...")."""
    return "Steps:" in text and ("Sampler:" in text or "CFG scale:" in text)


def sd_parameters_model(text: str) -> tuple[str, ...]:
    """The model names of A1111-style parameter text: its `Model: NAME`, then the public checkpoint its
    `Model hash` identifies (model_families.KNOWN_MODEL_HASHES); either may be missing."""
    tail = text[text.rfind("Steps:") :]
    model = re.search(r"(?:^|,\s*)Model: ([^,\n]+)", tail)
    model_hash = re.search(r"(?:^|,\s*)Model hash: ([0-9A-Fa-f]+)", tail)
    names = (model.group(1).strip() if model else None, checkpoint_of_hash(model_hash.group(1)) if model_hash else None)
    return tuple(name for name in names if name)


def _sd_parameters_detail(text: str) -> str:
    """`model_hash=..., model=...` from the last parameter line of A1111-style text."""
    tail = text[text.rfind("Steps:") :]
    parts = []
    for label, pattern in (("model_hash", r"Model hash: ([^,\n]+)"), ("model", r"(?:^|,\s*)Model: ([^,\n]+)")):
        match = re.search(pattern, tail)
        if match:
            parts.append(f"{label}={_short(match.group(1).strip())}")
    return ", ".join(parts)


# --- PNG text chunks ---------------------------------------------------------------------
# Each check gets the chunk's text and returns a short detail ("" when there is none), or
# None when the chunk is not what its key promises (then it is no evidence).


def _a1111_parameters(text: str) -> str | None:
    return _sd_parameters_detail(text) if looks_like_sd_parameters(text) else None


def _comfy_nodes(text: str) -> list[dict] | None:
    """The nodes of a ComfyUI API graph ({node_id: {"class_type": ..., "inputs": {...}}}), or None."""
    graph = _json_object(text)
    nodes = [n for n in graph.values() if isinstance(n, dict)] if graph else []
    return nodes if nodes and all("class_type" in n for n in nodes) else None


def comfy_checkpoints(text: str) -> tuple[str, ...]:
    """The checkpoint and diffusion-model names a ComfyUI API graph loads, sorted."""
    return tuple(
        sorted(
            {
                value
                for node in _comfy_nodes(text) or []
                if isinstance(node.get("inputs"), dict)
                for key, value in node["inputs"].items()
                if key in ("ckpt_name", "unet_name") and isinstance(value, str)
            }
        )
    )


def _comfy_prompt(text: str) -> str | None:
    """ComfyUI API graph; detail = the checkpoints it loads."""
    if _comfy_nodes(text) is None:
        return None
    models = comfy_checkpoints(text)
    if not models:
        return ""
    more = f"+{len(models) - MAX_MODELS} more" if len(models) > MAX_MODELS else ""
    return "models=" + "+".join(_short(m) for m in models[:MAX_MODELS]) + more


def _comfy_workflow(text: str) -> str | None:
    """ComfyUI UI workflow: {"nodes": [...], "links": [...], ...}."""
    graph = _json_object(text)
    return "" if graph and isinstance(graph.get("nodes"), list) else None


def _invokeai_model(meta: dict) -> tuple[str | None, str | None]:
    """(model name, base) of InvokeAI metadata; the base (`sdxl`, `sd-1`, `flux`) names the family."""
    model = meta.get("model")
    name = (model.get("name") or model.get("model_name")) if isinstance(model, dict) else model
    base = model.get("base") or model.get("base_model") if isinstance(model, dict) else None
    return (name if isinstance(name, str) and name else None), (base if isinstance(base, str) else None)


def invokeai_models(text: str) -> tuple[str, ...]:
    """The base and model name InvokeAI metadata records (base first: it names the family plainly)."""
    meta = _json_object(text)
    name, base = _invokeai_model(meta) if meta is not None else (None, None)
    return tuple(n for n in (base, name) if n)


def _invokeai_metadata(text: str) -> str | None:
    meta = _json_object(text)
    if meta is None:
        return None
    name = _invokeai_model(meta)[0]
    return f"model={_short(name)}" if name else ""


def _json_object_chunk(text: str) -> str | None:
    return "" if _json_object(text) is not None else None


def _invokeai_dream(text: str) -> str | None:
    """Legacy InvokeAI/"dream" command line: '"a prompt" -s 50 -S 42 -W 512 -H 512 ...'."""
    return "" if re.search(r"\s-s\s*\d+", text) and re.search(r"\s-S\s*\d+", text) else None


def _fooocus_scheme(text: str) -> str | None:
    return f"scheme={_short(text)}" if text.strip() else None


# PNG text key -> (tool, check). Order is priority: Fooocus also writes `parameters`.
PNG_KEYS: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "fooocus_scheme": ("Fooocus", _fooocus_scheme),
    "parameters": ("AUTOMATIC1111", _a1111_parameters),
    "prompt": ("ComfyUI", _comfy_prompt),
    "workflow": ("ComfyUI", _comfy_workflow),
    "invokeai_metadata": ("InvokeAI", _invokeai_metadata),
    "invokeai_graph": ("InvokeAI", _json_object_chunk),
    "invokeai_workflow": ("InvokeAI", _json_object_chunk),
    "sd-metadata": ("InvokeAI", _json_object_chunk),
    "Dream": ("InvokeAI", _invokeai_dream),
}


# PNG text key -> the model names its text holds.
PNG_MODEL_NAMES: dict[str, Callable[[str], tuple[str, ...]]] = {
    "parameters": sd_parameters_model,
    "prompt": comfy_checkpoints,
    "invokeai_metadata": invokeai_models,
}


def _png_text(image: DecodedImage) -> Finding | None:
    """The first tool whose keys validate; evidence lists all of its valid keys."""
    valid = {}
    for key, (tool, check) in PNG_KEYS.items():
        value = image.info.get(key)
        detail = check(value) if isinstance(value, str) else None
        if detail is not None:
            valid[key] = (tool, detail)
    if not valid:
        return None
    tool = next(iter(valid.values()))[0]
    keys = [k for k, (g, _) in valid.items() if g == tool]
    details = list(dict.fromkeys(valid[k][1] for k in keys if valid[k][1]))
    models = tuple(name for k in keys if k in PNG_MODEL_NAMES for name in PNG_MODEL_NAMES[k](image.info[k]))
    return Finding(tool, f"png:{'+'.join(keys)} ({', '.join([tool, *details])})", models)


def _novelai_source(meta: dict) -> tuple[str, ...]:
    """NovelAI's `Source` ("NovelAI Diffusion V4 ...", "Stable Diffusion XL ...") names the model."""
    source = meta.get("Source")
    return (source,) if isinstance(source, str) and source else ()


def _novelai_detail(meta: dict) -> str:
    source = _novelai_source(meta)
    return f"source={_short(source[0])}" if source else ""


def _novelai_png(image: DecodedImage) -> Finding | None:
    """NovelAI's own PNG chunks: Software "NovelAI" and a JSON `Comment`."""
    if image.info.get("Software") != "NovelAI" or _json_object(image.info.get("Comment")) is None:
        return None
    detail = _novelai_detail(image.info)
    return Finding(
        "NovelAI", f"png:Software+Comment (NovelAI{', ' + detail if detail else ''})", _novelai_source(image.info)
    )


# --- NovelAI stealth alpha payload -------------------------------------------------------


def _alpha_lsb_bytes(alpha: np.ndarray, start_bit: int, n_bits: int) -> bytes:
    """Bytes packed from alpha LSBs read column by column (x outer, y inner)."""
    height = alpha.shape[0]
    columns = -(-(start_bit + n_bits) // height)
    bits = alpha[:, :columns].T.ravel()[start_bit : start_bit + n_bits] & 1
    return np.packbits(bits).tobytes()


def read_stealth_payload(alpha: np.ndarray) -> tuple[str, str] | None:
    """(magic, text) of a NovelAI stealth payload in the alpha LSBs, or None."""
    magic_bits = len(STEALTH_MAGICS[0]) * 8
    available = alpha.size - magic_bits - 32
    if alpha.ndim != 2 or available <= 0:
        return None
    magic = _alpha_lsb_bytes(alpha, 0, magic_bits)
    if magic not in STEALTH_MAGICS:
        return None
    n_bits = int.from_bytes(_alpha_lsb_bytes(alpha, magic_bits, 32), "big")
    if not 0 < n_bits <= min(available, MAX_PAYLOAD_BYTES * 8):
        return None
    payload = _alpha_lsb_bytes(alpha, magic_bits + 32, n_bits)
    try:
        if magic == b"stealth_pngcomp":
            payload = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload, MAX_PAYLOAD_BYTES)
        return magic.decode(), payload.decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


def _stealth_alpha(image: DecodedImage) -> Finding | None:
    found = read_stealth_payload(image.alpha) if image.alpha is not None else None
    if found is None:
        return None
    magic, text = found
    meta = _json_object(text)
    if meta is None and looks_like_sd_parameters(text):  # A1111's stealth-pnginfo extension
        tool, detail, models = "AUTOMATIC1111", _sd_parameters_detail(text), sd_parameters_model(text)
    else:
        tool, detail, models = "NovelAI", _novelai_detail(meta or {}), _novelai_source(meta or {})
    return Finding(tool, f"alpha:{magic} ({', '.join(filter(None, [tool, detail]))})", models)


# --- EXIF --------------------------------------------------------------------------------


def user_comment_texts(value) -> list[str]:
    """Candidate readings of an EXIF UserComment (8-byte charset prefix + text, or raw)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, bytes):
        return []
    prefix, body = value[:8], value[8:]
    if prefix == b"UNICODE\0":
        return [body.decode("utf-16-be", "ignore"), body.decode("utf-16-le", "ignore")]
    if prefix == b"ASCII\0\0\0":
        return [body.decode("utf-8", "replace")]
    return [value.decode("utf-8", "replace")]


def _exif(image: DecodedImage) -> Finding | None:
    software = image.exif.get("Software")
    if isinstance(software, str) and software.startswith("Fooocus v"):
        return Finding("Fooocus", f"exif:Software (Fooocus, {_short(software)})")
    for text in user_comment_texts(image.exif.get("UserComment")):
        if looks_like_sd_parameters(text):
            detail = _sd_parameters_detail(text)
            return Finding(
                "AUTOMATIC1111",
                f"exif:UserComment ({', '.join(filter(None, ['AUTOMATIC1111', detail]))})",
                sd_parameters_model(text),
            )
    return None


# --- XMP ---------------------------------------------------------------------------------

# Attribute form  Iptc4xmpExt:DigitalSourceType="URI",
# element forms   <Iptc4xmpExt:DigitalSourceType>URI</...>  and  <... rdf:resource="URI"/>.
# The value is looked for in a bounded window after each occurrence of the name, so the time is
# linear in the packet's length whatever it holds (an unbounded lazy scan was quadratic).
_NAME = "DigitalSourceType"
_VALUE_AFTER_NAME = re.compile(r"\b[^<>]{0,200}?(?:=\s*[\"']|>)\s{0,50}([^\"'<\s]{1,300})")
_VALUE_WINDOW = 600
MAX_XMP_CHARS = 2_000_000  # XMP beyond this is not read (real packets are kilobytes)


def xmp_ai_source_type(xmp: str) -> str | None:
    """The AI digital source type declared in an XMP packet, or None."""
    xmp = xmp[:MAX_XMP_CHARS]
    start = xmp.find(_NAME)
    while start >= 0:
        end = start + len(_NAME)
        match = _VALUE_AFTER_NAME.match(xmp, end, end + _VALUE_WINDOW)
        value = match.group(1).rstrip("/").rsplit("/", 1)[-1] if match else None
        if value in AI_SOURCE_TYPES:
            return value
        start = xmp.find(_NAME, end)
    return None


def _xmp(image: DecodedImage) -> Finding | None:
    for key in ("xmp", "XML:com.adobe.xmp"):
        packet = image.info.get(key)
        if isinstance(packet, bytes):
            packet = packet.decode("utf-8", "ignore")
        source_type = xmp_ai_source_type(packet) if isinstance(packet, str) else None
        if source_type:
            return Finding("IPTC DigitalSourceType", f"xmp:DigitalSourceType ({source_type})")
    return None


# --- C2PA --------------------------------------------------------------------------------


def _claim_generator(manifest: dict) -> str:
    """A manifest's claim generator name (v2 `claim_generator_info`, or v1 `claim_generator`)."""
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict) and isinstance(info[0].get("name"), str):
        return info[0]["name"]
    generator = manifest.get("claim_generator")
    return generator.split()[0] if isinstance(generator, str) and generator.strip() else "unknown"


def _ai_actions(manifest: dict) -> list[str]:
    """AI digital source types of the actions in a manifest's `c2pa.actions*` assertions."""
    found = []
    for assertion in manifest.get("assertions") or []:
        if not (isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions")):
            continue
        data = assertion.get("data")
        actions = data.get("actions") if isinstance(data, dict) else None
        for action in actions if isinstance(actions, list) else []:
            source = action.get("digitalSourceType") if isinstance(action, dict) else None
            value = source.rstrip("/").rsplit("/", 1)[-1] if isinstance(source, str) else None
            if value in AI_SOURCE_TYPES and value not in found:
                found.append(value)
    return found


def c2pa_evidence(store: dict) -> Finding | None:
    """Evidence from a C2PA manifest store (the Reader's JSON), or None.

    Only an action with an AI digital source type, or a claim generator known to be an AI
    service, counts; any manifest of the store (active first, then ingredients') may carry it.
    """
    manifests = store.get("manifests")
    if not isinstance(manifests, dict):
        return None
    active = store.get("active_manifest")
    ordered = sorted((m for m in manifests.values() if isinstance(m, dict)), key=lambda m: m.get("label") != active)
    for manifest in ordered:
        actions = _ai_actions(manifest)
        if actions:
            name = _short(_claim_generator(manifest))
            return Finding(f"C2PA:{name}", f"c2pa:actions ({'+'.join(actions)}, claim_generator={name})", (name,))
    for manifest in ordered:
        name = _short(_claim_generator(manifest))
        if any(fragment in name.lower() for fragment in AI_CLAIM_GENERATORS):
            return Finding(f"C2PA:{name}", f"c2pa:claim_generator ({name})", (name,))
    return None


@functools.lru_cache(maxsize=1)
def _c2pa_context():
    import c2pa

    settings = c2pa.Settings.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    return c2pa.Context(settings=settings)


def read_c2pa_store(data: bytes) -> dict | None:
    """The manifest store embedded in `data`, read offline; None when absent or unreadable."""
    if b"c2pa" not in data:  # cheap pre-check for a JUMBF "c2pa" box
        return None
    try:
        import c2pa

        reader = c2pa.Reader.try_create(io.BytesIO(data), context=_c2pa_context())
        if reader is None:
            return None
        with reader:
            return _json_object(reader.json())
    except Exception:  # noqa: BLE001 - any SDK failure (bad JUMBF, remote-only, missing lib) is no evidence
        return None


def _c2pa(data: bytes) -> Finding | None:
    store = read_c2pa_store(data)
    return c2pa_evidence(store) if store else None


# --- the detector ------------------------------------------------------------------------

IMAGE_CHECKS = (_png_text, _novelai_png, _stealth_alpha, _exif, _xmp)


def find_generator(image: DecodedImage, data: bytes) -> Finding | None:
    """The first piece of generator metadata found in a decoded image and its raw bytes."""
    for check in IMAGE_CHECKS:
        found = check(image)
        if found:
            return found
    return _c2pa(data)


class MetadataDetector:
    name = "metadata"
    needs = frozenset({NEEDS_BYTES, NEEDS_PIXELS})
    hard_evidence = True

    def detect(self, batch: Sequence[ImageRecord]) -> list[Signal]:
        return [self._detect_one(record) for record in batch]

    @staticmethod
    def _detect_one(record: ImageRecord) -> Signal:
        image = record.decoded()
        if image is None:
            return not_applicable("decode failed")
        try:
            found = find_generator(image, record.read_bytes() or b"")
        except Exception as e:  # noqa: BLE001 - never raise from detect(); a bug here is no verdict
            return not_applicable(f"metadata check failed: {type(e).__name__}")
        if found is None:
            return Signal(score=None, decision=NO_EVIDENCE, evidence="no generator metadata")
        return Signal(
            score=1.0, decision=SYNTHETIC, evidence=found.evidence, generator=family_of(found.models), tool=found.tool
        )
