"""The model families that checkpoint and model names point to: the one table of known name patterns.

A generator front-end (ComfyUI, AUTOMATIC1111, InvokeAI, ...) is the *tool*; the checkpoint it
loaded (`flux1-schnell.safetensors`, `sd3.5_large_fp8_scaled`, `sd_xl_base_1.0`) names the
*model family* (FLUX.1, SD 3.5, SDXL). A name no pattern matches, or evidence that names no model,
gives `UNKNOWN_MODEL`. Patterns are matched, first match wins, against the lower-cased name, so a
more specific family (SD 3.5) comes before a broader one (SD 3), a derived family whose name
contains another's (Chroma, a FLUX derivative) comes before it, and SDXL (whose fine-tunes carry
`XL` or `Pony` in their names: `dreamshaperXL`) before the SD 1.x fine-tunes known by name
(`AOM3A1`, `dreamshaper_8`, `realisticVisionV51`, ...). Other fine-tunes stay `UNKNOWN_MODEL`.

AUTOMATIC1111 also writes a `Model hash`; `KNOWN_MODEL_HASHES` maps the hashes of the public base
checkpoints to their file names, so a hash names its family through the same patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

UNKNOWN_MODEL = "unknown model"

_SD = r"(?:stable[-_ ]?diffusion|sd)[-_ ]?"
# Widely shared fine-tunes of SD 1.5 (their XL and Pony versions say so, and match SDXL first).
_SD1_FINETUNES = (
    r"anything-?v?[345]|(?<![a-z])aom[-_ ]?[123]|orangemix|dreamshaper|realistic[-_ ]?vision|"
    r"deliberate|chilloutmix|rev[-_ ]?animated|majicmix|dark[-_ ]?sushi[-_ ]?mix|meinamix|"
    r"counterfeit|epic[-_ ]?realism|epic[-_ ]?photogasm|absolute[-_ ]?reality|cyberrealistic|"
    r"openjourney|protogen|ghostmix"
)

# (family, pattern), in matching order.
FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("Chroma", r"chroma"),
    ("FLUX.1", r"flux"),
    ("SD 3.5", _SD + r"3[._]?5"),
    ("SD 3", _SD + r"v?3(?![0-9])"),
    ("Stable Cascade", r"stable[-_ ]?cascade|wuerstchen"),
    ("SDXL", r"sd[-_ ]?xl|cosxl|stable[-_ ]?diffusion[-_ ]?xl|(?<![a-z])xl(?![a-z])|[a-z]xl(?=[-_.v0-9]|$)|pony"),
    ("SD 2.x", _SD + r"v?2(?:[._x]|$)|v2-[01]|512-inpainting-ema|768-v-ema|sd[-_ ]?2[01](?![0-9])"),
    ("Zero123", r"zero[-_ ]?123"),  # novel-view models fine-tuned from SD image variations (Stable Zero123)
    ("SD 1.x", _SD + r"v?1(?:[._x45]|$)|v1-[45]|sd15|" + _SD1_FINETUNES),
    ("Hunyuan-DiT", r"hunyuan[-_ ]?dit"),
    ("HiDream", r"hidream"),
    ("AuraFlow", r"aura[-_ ]?flow"),
    ("Lumina 2", r"lumina[-_ ]?2"),
    ("Cosmos Predict2", r"cosmos[-_ ]?predict[-_ ]?2"),
    ("OmniGen2", r"omnigen[-_ ]?2"),
    ("Qwen-Image", r"qwen[-_ ]?image"),
    ("Z-Image", r"(?<![a-z])z[-_ ]?image"),
    ("PixArt", r"pixart"),
    ("Kandinsky", r"kandinsky"),
    ("NovelAI Diffusion", r"novelai[-_ ]?diffusion"),
    (
        "OpenAI (DALL-E / GPT image)",
        r"openai|dall[-·. ]?e|chatgpt|gpt[-_ ]?4o|gpt[-_ ]?image|bing image creator|"
        r"microsoft responsible ai",
    ),
    ("Adobe Firefly", r"firefly"),
    ("Midjourney", r"midjourney"),
    ("Google Imagen", r"imagen|gemini"),
)
_COMPILED = tuple((family, re.compile(pattern)) for family, pattern in FAMILY_PATTERNS)

# AUTOMATIC1111's `Model hash` -> the public checkpoint it identifies (its family comes from the
# patterns above). The 10-digit hashes are the first digits of the file's SHA-256, as the makers
# publish it; the 8-digit ones are the older hash A1111 wrote until late 2022.
KNOWN_MODEL_HASHES = {
    "7460a6fa": "sd-v1-4.ckpt",
    "fe4efff1e1": "sd-v1-4.ckpt",
    "a9263745": "v1-5-pruned.ckpt",
    "e1441589a6": "v1-5-pruned.ckpt",
    "1a189f0be6": "v1-5-pruned.safetensors",
    "81761151": "v1-5-pruned-emaonly.ckpt",
    "cc6cb27103": "v1-5-pruned-emaonly.ckpt",
    "6ce0161689": "v1-5-pruned-emaonly.safetensors",
    "ad2a33c361": "v2-1_768-ema-pruned.ckpt",
    "dcd690123c": "v2-1_768-ema-pruned.safetensors",
    "4711ff4dd2": "v2-1_768-nonema-pruned.ckpt",
    "ff144a4984": "v2-1_768-nonema-pruned.safetensors",
    "31e35c80fc": "sd_xl_base_1.0.safetensors",
    "e6bb9ea85b": "sd_xl_base_1.0_0.9vae.safetensors",
    "7440042bbd": "sd_xl_refiner_1.0.safetensors",
    "8d0ce6c016": "sd_xl_refiner_1.0_0.9vae.safetensors",
}


def checkpoint_of_hash(model_hash: str | None) -> str | None:
    """The public checkpoint an A1111 `Model hash` identifies, or None."""
    return KNOWN_MODEL_HASHES.get(model_hash.strip().lower()) if model_hash else None


def model_family(name: str | None) -> str | None:
    """The family a checkpoint or model name points to, or None when no known pattern matches."""
    if not name:
        return None
    text = name.lower()
    return next((family for family, pattern in _COMPILED if pattern.search(text)), None)


def family_of(names: Iterable[str]) -> str:
    """The family of the first name that points to one (a graph's base model before its refiner),
    else UNKNOWN_MODEL."""
    return next((family for family in map(model_family, names) if family), UNKNOWN_MODEL)


WATERMARK_TOOL = "invisible watermark"


def family_and_tool(generator: str | None, tool: str | None) -> tuple[str | None, str | None]:
    """A signal's (family, tool). A signal without a tool (a watermark key's name) names either a family
    (`Stable Diffusion 1.x` -> SD 1.x, written by an invisible watermark) or a tool (`InvokeAI`)."""
    if generator is None or tool is not None:
        return generator, tool
    family = model_family(generator)
    return (family, WATERMARK_TOOL) if family else (UNKNOWN_MODEL, generator)


def attribute(named: Iterable[tuple[str | None, str | None]]) -> tuple[str | None, str | None]:
    """(generator, tool) of a flagged row from the (generator, tool) of its synthetic signals: the first
    known model family (else UNKNOWN_MODEL when some signal names a tool or generator), and the first tool."""
    pairs = [family_and_tool(generator, tool) for generator, tool in named]
    families = [f for f, _ in pairs if f]
    generator = next((f for f in families if f != UNKNOWN_MODEL), families[0] if families else None)
    return generator, next((t for _, t in pairs if t), None)
