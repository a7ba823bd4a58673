"""benchmarks/real_detection.py: its pieces on made-up inputs, and a quick run end to end on the labelled
real-image benchmark set with the real CLIP encoder (skipped when either is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.real_detection import (
    EMBEDDER,
    SIZE,
    Item,
    draw_mix,
    family_of,
    main,
    mix_row,
    pooled_mix_line,
    reported_range,
)
from tests.conftest import shared_data


def test_family_names_follow_the_product_table():
    assert family_of("SD1.x (likely v1.4; Sep-2022)") == "SD 1.x"
    assert family_of("SDXL-finetune (JuggernautXL v8, Fooocus)") == "SDXL"
    assert family_of("Kolors (ControlNet)") == "Kolors"
    assert family_of("ComfyUI graph; models=flux1-dev.safetensors") == "FLUX.1"


def test_a_mix_holds_exactly_its_share_of_ai_images():
    pools = {label: [Item(None, label, "s", "f") for _ in range(40)] for label in (0, 1)}
    for pi in (0.0, 0.05, 0.2, 0.5):
        mix = draw_mix(pools, pi, np.random.default_rng(0))
        assert sum(i.label for i in mix) == round(pi * len(mix))


def test_a_warned_scan_is_judged_by_its_band():
    estimate = {"point": 0.1, "interval": [0.05, 0.15], "shift": {"tested": True, "warned": True, "band": [0.05, 0.4]}}
    assert reported_range(estimate) == ([0.05, 0.4], True, True)
    assert reported_range({"point": 0.1, "interval": [0.05, 0.15]}) == ([0.05, 0.15], False, False)
    row = mix_row("split", 0.3, [(0.3, 10, estimate)], 0)
    assert row[5:8] == ["0.00", "1.00", "1.00"]  # the interval misses, the band covers
    assert row[-1] == "1/1"  # the miss carried the warning
    assert "1 interval misses, 1 of them warned" in pooled_mix_line([row])


@pytest.mark.slow  # embeds every labelled image (about a minute on 2 cores)
def test_quick_run_end_to_end(tmp_path, capsys, clip_encoder):
    data = shared_data("real-bench").parent
    assert clip_encoder == EMBEDDER
    assert main(["--quick", "--data", str(data), "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for heading in (
        "## Detection, all images",
        "## Per generator family",
        "## Per source",
        "## Unseen sources",
        "## Estimates on scans drawn from held-out sources",
        "## Speed",
    ):
        assert heading in out
    normalised = sorted((tmp_path / "norm").rglob("*.jpg"))
    assert {p.parts[-3] for p in normalised} == {"ai", "real"}
    with Image.open(normalised[0]) as image:
        assert image.format == "JPEG" and image.size == (SIZE, SIZE) and "exif" not in image.info
