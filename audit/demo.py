"""The built-in demo folder: real photographs from scikit-image's bundled sample data, plus
copies of some of them that this module marks the way generators do (invisible watermark,
generator metadata, IPTC DigitalSourceType), re-shared copies of marked images whose marks were
lost (JPEG re-encoded or downsized), plus two broken files.

The marked copies are NOT AI-generated: they are labelled stand-ins that carry real generator
provenance signals, so the scan has something to find. `labels.csv` records the truth. The
re-shared copies carry no signal of their own: the demo's bank of the marked images (`demo_bank`,
embedded by the real CLIP encoder) finds them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from audit.atomic import write_atomically
from audit.detectors.watermark import KNOWN_KEYS, embed_watermark

# The real photographs; the marked copies are made of other photographs, so that a bank of the marked
# images matches no real one.
REAL_PHOTOS = (
    "brick.png",
    "camera.png",
    "cell.png",
    "clock_motion.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "ihc.png",
    "moon.png",
    "page.png",
)
A1111_PARAMETERS = (
    "a photo of an astronaut, high detail\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, "
    "CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly"
)
COMFYUI_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 7.0}},
}
XMP_AI = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
    "</rdf:RDF></x:xmpmeta>"
)
DEMO_EMBEDDER = "onnx:clip-vit-b16-int8"  # the real CLIP image encoder, `audit models pull clip-vit-b16-int8`
README = """DEMO DATA - built by `audit demo` (autophagy-audit). Not a benchmark.

real/      real photographs from scikit-image's bundled sample data.
marked/    copies of some of those photographs that the demo MARKED like generator output
           (an invisible generator watermark, or generator metadata). They are not AI-generated;
           they carry real provenance signals so the scan has something to find.
reshared/  copies of marked images as they travel online: JPEG re-encoded or downsized, their
           watermark or metadata lost. Only a bank of known images (`audit bank add`) finds them.
broken/    a truncated PNG and a text file named .jpg: each becomes an error row.
labels.csv the truth for every file.
"""


def sample_photo(name: str) -> np.ndarray:
    """A photograph bundled with scikit-image, as RGB pixels."""
    import skimage.data

    with Image.open(os.path.join(os.path.dirname(skimage.data.__file__), name)) as im:
        return np.asarray(im.convert("RGB"))


def _save_png(path: Path, rgb: np.ndarray, text: dict | None = None) -> None:
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    write_atomically(path, lambda p: Image.fromarray(rgb).save(p, pnginfo=info))


def _marked_copies(out: Path) -> list[tuple[str, str]]:
    """Write the marked copies; return (relative path, how it was marked)."""
    keys = {key.generator: key for key in KNOWN_KEYS}
    made = []
    for photo, generator in (
        ("astronaut.png", "Stable Diffusion 1.x"),
        ("coffee.png", "SDXL"),
        ("rocket.jpg", "Stable Diffusion 2.x"),
        ("motorcycle_left.png", "InvokeAI"),
    ):
        name = f"marked/wm_{Path(photo).stem}.png"
        _save_png(out / name, embed_watermark(sample_photo(photo), keys[generator]))
        made.append((name, f"invisible watermark: {generator}"))
    _save_png(out / "marked/a1111_chelsea.png", sample_photo("chelsea.png"), {"parameters": A1111_PARAMETERS})
    made.append(("marked/a1111_chelsea.png", "PNG text 'parameters' (AUTOMATIC1111)"))
    _save_png(
        out / "marked/comfyui_hubble.png", sample_photo("hubble_deep_field.jpg"), {"prompt": json.dumps(COMFYUI_PROMPT)}
    )
    made.append(("marked/comfyui_hubble.png", "PNG text 'prompt' (ComfyUI graph)"))
    retina = Image.fromarray(sample_photo("retina.jpg"))
    write_atomically(out / "marked/xmp_retina.jpg", lambda p: retina.save(p, quality=90, xmp=XMP_AI.encode()))
    made.append(("marked/xmp_retina.jpg", "XMP DigitalSourceType trainedAlgorithmicMedia"))
    return made


def _reshared_copies(out: Path) -> list[tuple[str, str]]:
    """Copies of marked images whose marks are lost (JPEG q60 with chroma subsampling, or half size)."""
    made = []
    for marked, kind in (
        ("wm_astronaut.png", "jpeg"),
        ("wm_coffee.png", "half"),
        ("a1111_chelsea.png", "jpeg"),
        ("comfyui_hubble.png", "half"),
    ):
        with Image.open(out / "marked" / marked) as im:
            rgb = im.convert("RGB")
        stem = Path(marked).stem
        if kind == "jpeg":
            name = f"reshared/{stem}_q60.jpg"
            write_atomically(out / name, lambda p, image=rgb: image.save(p, quality=60, subsampling=2))
        else:
            name = f"reshared/{stem}_half.png"
            half = rgb.resize((rgb.width // 2, rgb.height // 2), Image.BICUBIC)
            write_atomically(out / name, half.save)
        made.append((name, f"re-shared copy of marked/{marked}, mark lost ({kind})"))
    return made


def demo_bank(images: Path, bank_dir: Path, embedder: str = DEMO_EMBEDDER) -> Path:
    """A bank of the demo's marked images, embedded by the real CLIP encoder (pulled into the model
    cache when missing; ConnectionError when it cannot be)."""
    from audit.bank_add import add_to_bank
    from audit.embedding.encoders import ensure_encoder

    ensure_encoder(embedder.split(":", 1)[1])
    shutil.rmtree(bank_dir, ignore_errors=True)
    add_to_bank(str(images / "marked"), bank_dir, label="demo-marked", embedder=embedder, workers=0)
    return bank_dir


def build_demo_folder(out: str | Path) -> Path:
    """Build (or rebuild) the demo folder at `out` and return its path."""
    out = Path(out)
    for sub in ("real", "marked", "reshared", "broken"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    labels = []
    for photo in REAL_PHOTOS:
        name = f"real/{Path(photo).stem}.png"
        _save_png(out / name, sample_photo(photo))
        labels.append((name, "real", "scikit-image sample photograph"))
    labels += [(name, "marked", how) for name, how in _marked_copies(out)]
    labels += [(name, "marked", how) for name, how in _reshared_copies(out)]
    buffer = io.BytesIO()
    Image.fromarray(sample_photo("coins.png")).save(buffer, format="PNG")
    write_atomically(
        out / "broken/truncated.png", lambda p: p.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    )
    write_atomically(out / "broken/not_an_image.jpg", lambda p: p.write_text("this is text, not a JPEG\n"))
    labels += [("broken/truncated.png", "error", "PNG cut in half"), ("broken/not_an_image.jpg", "error", "text file")]
    write_atomically(out / "DEMO_README.txt", lambda p: p.write_text(README))

    def write_labels(path: Path) -> None:
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([("file", "label", "how it was made"), *labels])

    write_atomically(out / "labels.csv", write_labels)
    return out


def build_demo_copies(root: str | Path, copies: int) -> Path:
    """`copies` distinct variants of the demo folder under `root` (one pixel changed per copy, so
    no two files share content and nothing is deduplicated): a larger default benchmark source."""
    root = Path(root)
    demo = build_demo_folder(root / "demo")
    for i in range(copies):
        target = root / "source" / f"copy{i}"
        shutil.copytree(demo, target)
        for path in list((target / "real").iterdir()) + list((target / "marked").iterdir()):
            with Image.open(path) as im:
                pixels = np.array(im.convert("RGB"))
            pixels[0, 0] = (i * 37) % 256, i % 256, 255 - i % 256
            write_atomically(path.with_suffix(".png"), Image.fromarray(pixels).save)
            if path.suffix != ".png":
                path.unlink()
    return root / "source"
