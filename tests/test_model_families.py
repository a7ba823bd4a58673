"""Model family and tool: the checkpoint-name table on the real ComfyUI and A1111 files, names built
here, watermark keys, and the generator/tool columns and counts of a scan."""

from __future__ import annotations

import csv

import pytest

from audit.detectors.metadata import MetadataDetector, sd_parameters_model
from audit.detectors.model_families import (
    KNOWN_MODEL_HASHES,
    UNKNOWN_MODEL,
    WATERMARK_TOOL,
    attribute,
    checkpoint_of_hash,
    family_and_tool,
    family_of,
    model_family,
)
from audit.sources import ImageRecord
from tests.conftest import shared_data

# The checkpoint each real file's graph loads (its manifest's `models=`) -> the family it belongs to.
EXPECTED_FAMILY = {
    "v1-5-pruned-emaonly.ckpt": "SD 1.x",
    "Anything-V3.0.ckpt": "SD 1.x",
    "512-inpainting-ema.safetensors": "SD 2.x",
    "sd_xl_turbo_1.0_fp16.safetensors": "SDXL",
    "sd_xl_1.0.safetensors": "SDXL",
    "sd_xl_base_1.0.safetensors+sd_xl_refiner_1.0.safetensors": "SDXL",
    "cosxl_edit.safetensors": "SDXL",
    "sd3_medium_incl_clips_t5xxlfp8.safetensors": "SD 3",
    "sd3.5_large_fp8_scaled.safetensors": "SD 3.5",
    "stable_cascade_stage_b.safetensors+stable_cascade_stage_c.safetensors": "Stable Cascade",
    "flux1-dev.safetensors": "FLUX.1",
    "flux1-dev-fp8.safetensors": "FLUX.1",
    "flux1-schnell.safetensors": "FLUX.1",
    "flux1-fill-dev.safetensors": "FLUX.1",
    "chroma-unlocked-v47-detail-calibrated.safetensors": "Chroma",
    "hidream_e1_full_bf16.safetensors": "HiDream",
    "hidream_i1_dev_bf16.safetensors": "HiDream",
    "hunyuan_dit_1.2.safetensors": "Hunyuan-DiT",
    "aura_flow_0.2.safetensors": "AuraFlow",
    "lumina_2.safetensors": "Lumina 2",
    "cosmos_predict2_2B_t2i.safetensors": "Cosmos Predict2",
    "omnigen2_fp16.safetensors": "OmniGen2",
    "qwen_image_edit_fp8_e4m3fn.safetensors": "Qwen-Image",
    "z_image_turbo_bf16.safetensors": "Z-Image",
}


def _manifest(folder) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_real_comfyui_and_a1111_files_get_their_family_and_tool():
    folder = shared_data("ai-metadata")
    manifest = _manifest(folder)
    records = [
        ImageRecord(id=r["filename"], uri=str(folder / r["filename"]), path=str(folder / r["filename"]))
        for r in manifest
    ]
    for row, signal in zip(manifest, MetadataDetector().detect(records)):
        described = row["generator_from_metadata"]
        if described.startswith("ComfyUI"):
            models = described.split("models=")[1]
            assert (signal.tool, signal.generator) == ("ComfyUI", EXPECTED_FAMILY[models]), row["filename"]
        else:  # SD 1.5 fine-tunes known by name (darkSushiMix, majicmix); a hash of no public checkpoint: unknown
            family = "SD 1.x" if "model=" in described else UNKNOWN_MODEL
            assert (signal.tool, signal.generator) == ("AUTOMATIC1111", family), row["filename"]
    assert len({s.generator for s in MetadataDetector().detect(records)}) >= 15


@pytest.mark.parametrize(
    "name, family",
    [
        ("Stable Diffusion 1.x", "SD 1.x"),
        ("Stable Diffusion 1.x inpainting", "SD 1.x"),
        ("Stable Diffusion 2.x", "SD 2.x"),
        ("SDXL", "SDXL"),
        ("v2-1_768-ema-pruned.safetensors", "SD 2.x"),
        ("juggernautXL_v8Rundiffusion.safetensors", "SDXL"),
        ("Stable Diffusion XL C1E1DE52", "SDXL"),
        ("NovelAI Diffusion V4 4F49EC75", "NovelAI Diffusion"),
        ("ChatGPT", "OpenAI (DALL-E / GPT image)"),
        ("Adobe Firefly", "Adobe Firefly"),
        ("", None),
        (None, None),
        # names of a ComfyUI set the table had not seen: SD 2.x unCLIP, Stable Zero123, SD 1.5 fine-tunes
        ("sd21-unclip-h.ckpt", "SD 2.x"),
        ("sd21-unclip-l.ckpt", "SD 2.x"),
        ("stable_zero123.ckpt", "Zero123"),
        ("AOM3A1.safetensors", "SD 1.x"),
        ("AbyssOrangeMix2_hard.safetensors", "SD 1.x"),
        ("anything-v3-fp16-pruned.safetensors", "SD 1.x"),
        ("dreamshaper_8.safetensors", "SD 1.x"),
        ("realisticVisionV51_v51VAE.safetensors", "SD 1.x"),
        ("deliberate_v2.safetensors", "SD 1.x"),
        ("revAnimated_v122.safetensors", "SD 1.x"),
        # their XL and Pony versions are SDXL; an unrelated name stays unknown
        ("dreamshaperXL_v21TurboDPMSDE.safetensors", "SDXL"),
        ("cyberrealisticPony_v65.safetensors", "SDXL"),
        ("zoom3d_mix.safetensors", None),
        ("my_own_merge_v2.safetensors", None),
    ],
)
def test_model_family_of_names(name, family):
    assert model_family(name) == family


def test_first_named_family_wins_else_unknown():
    assert family_of(["vae.safetensors", "flux1-dev.safetensors", "sd_xl_base_1.0.safetensors"]) == "FLUX.1"
    assert family_of(["illust_darkSushiMixMix_brighterPruned"]) == "SD 1.x"
    assert family_of(["someones_private_merge"]) == UNKNOWN_MODEL
    assert family_of([]) == UNKNOWN_MODEL


def test_watermark_keys_name_a_family_or_a_tool():
    assert family_and_tool("Stable Diffusion 2.x", None) == ("SD 2.x", WATERMARK_TOOL)
    assert family_and_tool("InvokeAI", None) == (UNKNOWN_MODEL, "InvokeAI")
    assert family_and_tool("FLUX.1", "ComfyUI") == ("FLUX.1", "ComfyUI")
    assert family_and_tool(None, None) == (None, None)
    # metadata names the tool only, a watermark the family: the row gets both
    assert attribute([(UNKNOWN_MODEL, "AUTOMATIC1111"), ("SDXL", None)]) == ("SDXL", "AUTOMATIC1111")
    assert attribute([]) == (None, None)


def test_scan_counts_generators_and_tools_both_ways(tmp_path):
    import shutil

    from rich.console import Console

    from audit.engine.local import scan
    from audit.report.console import summary_table

    metadata, watermark = shared_data("ai-metadata"), shared_data("ai-watermark")
    for name in (
        "comfyui__flux_flux_schnell_example.png",
        "comfyui__sd3_sd3.5_simple_example.png",
        "a1111__controlnet_dog_rel.png",
    ):
        shutil.copy(metadata / name, tmp_path / name)
    shutil.copy(watermark / "sd1__compvis-pr201_sample_00001.png", tmp_path / "sd1.png")  # exact SD1 mark
    result = scan(str(tmp_path), tmp_path / "out", workers=0)
    rows = {r["id"]: (r["generator"], r["tool"]) for r in result.rows}
    assert rows == {
        "comfyui__flux_flux_schnell_example.png": ("FLUX.1", "ComfyUI"),
        "comfyui__sd3_sd3.5_simple_example.png": ("SD 3.5", "ComfyUI"),
        "a1111__controlnet_dog_rel.png": (UNKNOWN_MODEL, "AUTOMATIC1111"),
        "sd1.png": ("SD 1.x", WATERMARK_TOOL),
    }
    assert result.summary["per_tool"] == {"ComfyUI": 2, "AUTOMATIC1111": 1, WATERMARK_TOOL: 1}
    assert sum(result.summary["per_generator"].values()) == 4
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Tools" in report and "| ComfyUI | 2 |" in report and "| FLUX.1 | 1 |" in report
    assert "<h2>Tools</h2>" in (tmp_path / "out" / "report.html").read_text()
    console = Console(record=True, width=120)
    console.print(summary_table(result.summary))
    assert "tool: ComfyUI" in console.export_text()


@pytest.mark.parametrize(
    "model_hash, family",
    [
        ("6ce0161689", "SD 1.x"),
        ("cc6cb27103", "SD 1.x"),
        ("81761151", "SD 1.x"),
        ("7460a6fa", "SD 1.x"),
        ("dcd690123c", "SD 2.x"),
        ("ad2a33c361", "SD 2.x"),
        ("31e35c80fc", "SDXL"),
        ("7440042bbd", "SDXL"),
    ],
)
def test_a1111_model_hash_of_a_public_checkpoint_names_its_family(model_hash, family):
    """Parameters with a `Model hash` and no `Model:` name (older A1111 versions wrote only the hash)."""
    text = f"a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: {model_hash}"
    assert checkpoint_of_hash(model_hash) in KNOWN_MODEL_HASHES.values()
    assert sd_parameters_model(text) == (checkpoint_of_hash(model_hash),)
    assert family_of(sd_parameters_model(text)) == family


def test_every_known_hash_names_a_family_and_unknown_hashes_none():
    assert all(model_family(name) for name in KNOWN_MODEL_HASHES.values())
    assert checkpoint_of_hash("679c66ec9a") is None and checkpoint_of_hash(None) is None
    named = "x\nSteps: 20, Sampler: Euler a, CFG scale: 7, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly"
    assert sd_parameters_model(named) == ("v1-5-pruned-emaonly", "v1-5-pruned-emaonly.safetensors")


def test_a1111_hash_reaches_the_row_through_the_metadata_detector(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from tests.conftest import image_bytes, noise_image

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Model hash: 31e35c80fc")
    path = tmp_path / "x.png"
    path.write_bytes(image_bytes(noise_image(seed=3), "PNG", pnginfo=info))
    [signal] = MetadataDetector().detect([ImageRecord(id="x.png", uri=str(path), path=str(path))])
    assert (signal.tool, signal.generator) == ("AUTOMATIC1111", "SDXL")
