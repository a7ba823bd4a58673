"""`audit scan --baseline OLD_OUT`: the change of the synthetic fraction and its lower bound
since an earlier scan, new generators, and the `--fail-on-increase` gate."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit.cli import main
from audit.compare import compare
from tests.conftest import image_bytes, noise_image

A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7"
COMFY = json.dumps({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}})


def _version(root, marked: dict[str, str], clean: int):
    root.mkdir()
    for i in range(clean):
        (root / f"clean{i}.png").write_bytes(image_bytes(noise_image(seed=i)))
    for i, (key, text) in enumerate(marked.items()):
        info = PngInfo()
        info.add_text(key, text)
        (root / f"marked{i}.png").write_bytes(image_bytes(noise_image(seed=100 + i), "PNG", pnginfo=info))
    return root


def _scan(*args):
    return CliRunner().invoke(main, ["scan", *map(str, args), "--workers", "0", "--quiet", "--detectors", "metadata"])


def test_a_rising_fraction_fails_the_increase_gate_and_is_reported(tmp_path):
    old = _version(tmp_path / "v1", {"parameters": A1111}, clean=9)
    new = _version(tmp_path / "v2", {"parameters": A1111, "prompt": COMFY}, clean=4)
    assert _scan(old, "--out", tmp_path / "o1").exit_code == 0
    failed = _scan(
        new, "--out", tmp_path / "o2", "--baseline", tmp_path / "o1", "--fail-on-increase", "0.02", "--format", "json"
    )
    assert failed.exit_code == 1, failed.output
    b = json.loads(failed.stdout)["baseline"]
    assert (b["before"], b["after"]) == (0.1, 2 / 6) and isinstance(b["new_generators"], list)
    assert b["change_interval"][0] < b["change"] < b["change_interval"][1]
    assert "increase since the baseline" in failed.output and "Since " in (tmp_path / "o2" / "report.md").read_text()
    relaxed = _scan(new, "--out", tmp_path / "o3", "--baseline", tmp_path / "o1", "--fail-on-increase", "0.5")
    assert relaxed.exit_code == 0, relaxed.output


def test_the_increase_gate_needs_a_usable_baseline(tmp_path):
    src = _version(tmp_path / "v1", {}, clean=2)
    assert _scan(src, "--out", tmp_path / "o", "--fail-on-increase", "0.1").exit_code == 2
    (tmp_path / "empty").mkdir()
    bad = _scan(src, "--out", tmp_path / "o", "--baseline", tmp_path / "empty")
    assert bad.exit_code == 2 and "summary.json" in bad.output.replace("\n", "")


def test_new_generators_and_the_groups_whose_share_rose_most_come_first():
    def summary(point, generators, groups):
        return {
            "estimate": {"point": point, "interval": [point, point], "lower_bound": 0.0},
            "per_generator": dict.fromkeys(generators, 1),
            "groups": {"by": "shard", "groups": [{"group": n, "flagged_share": v} for n, v in groups.items()]},
        }

    b = compare(
        summary(0.1, ["SDXL"], {"a": 0.1, "b": 0.5, "c": 0.2}),
        summary(0.2, ["SDXL", "FLUX.1"], {"a": 0.6, "b": 0.4, "c": 0.35, "d": 0.1}),
        "old",
    )
    assert [g["name"] for g in b["groups_rising"]] == ["a", "c", "d"] and b["new_generators"] == ["FLUX.1"]
    assert b["change"] == 0.1 and b["change_interval"] == [0.1, 0.1]


def test_groups_rising_come_from_real_scans(tmp_path):
    """Two scans of folder sources grouped by folder: the folder that gained a marked image rises."""
    for version, marked in (("v1", 0), ("v2", 1)):
        for folder in ("a", "b"):
            root = tmp_path / version / folder
            root.mkdir(parents=True)
            (root / "clean.png").write_bytes(image_bytes(noise_image(seed=1)))
        if marked:
            info = PngInfo()
            info.add_text("parameters", A1111)
            (tmp_path / version / "b" / "x.png").write_bytes(image_bytes(noise_image(seed=2), "PNG", pnginfo=info))
    assert _scan(tmp_path / "v1", "--out", tmp_path / "o1").exit_code == 0
    result = _scan(tmp_path / "v2", "--out", tmp_path / "o2", "--baseline", tmp_path / "o1", "--format", "json")
    assert [g["name"] for g in json.loads(result.stdout)["baseline"]["groups_rising"]] == ["b"]


def test_a_group_absent_from_the_baseline_reads_new(tmp_path):
    """A folder that did not exist in the baseline scan is new, not a rise from 0 %."""
    for version, folders in (("v1", ("a",)), ("v2", ("a", "b"))):
        for folder in folders:
            (tmp_path / version / folder).mkdir(parents=True)
            (tmp_path / version / folder / "clean.png").write_bytes(image_bytes(noise_image(seed=1)))
    info = PngInfo()
    info.add_text("parameters", A1111)
    (tmp_path / "v2" / "b" / "x.png").write_bytes(image_bytes(noise_image(seed=2), "PNG", pnginfo=info))
    assert _scan(tmp_path / "v1", "--out", tmp_path / "o1").exit_code == 0
    result = _scan(tmp_path / "v2", "--out", tmp_path / "o2", "--baseline", tmp_path / "o1", "--format", "json")
    [group] = json.loads(result.stdout)["baseline"]["groups_rising"]
    assert (group["name"], group["before"], group["new"], group["after"]) == ("b", None, True, 0.5)
    report = (tmp_path / "o2" / "report.md").read_text()
    assert "Flagged share of b: new in this scan" in report and "rose: 0.00" not in report


def test_a_group_missing_from_a_truncated_baseline_list_is_not_called_new():
    def summary(groups, left_off):
        return {
            "estimate": {"point": 0.1, "interval": [0.1, 0.1]},
            "groups": {
                "by": "shard",
                "left_off": left_off,
                "groups": [{"group": n, "flagged_share": v} for n, v in groups.items()],
            },
        }

    complete = compare(summary({"a": 0.1}, 0), summary({"a": 0.2, "z": 0.3}, 0), "old")["groups_rising"]
    truncated = compare(summary({"a": 0.1}, 5), summary({"a": 0.2, "z": 0.3}, 0), "old")["groups_rising"]
    assert [(g["name"], g["before"], g["new"]) for g in complete] == [("z", None, True), ("a", 0.1, False)]
    assert [(g["name"], g["new"]) for g in truncated] == [("z", None), ("a", False)]
