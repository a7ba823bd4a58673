"""The image world: diffusion backend, publishing, the real detectors as filters, reweighting, --from-scan."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from loops import SimConfig, simulate
from loops.config import ConfigError, resolve
from loops.outputs.summary import without_timings
from tests.conftest import shared_data


def _digit_folder(root: Path, per_class: int = 40) -> str:
    """A tiny labelled dataset: bars at three angles (class folders), drawn at 28x28."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for label, angle in enumerate(("h", "v", "d")):
        folder = root / f"class-{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            picture = Image.new("L", (28, 28))
            draw = ImageDraw.Draw(picture)
            a, b = rng.integers(4, 9), rng.integers(19, 24)
            line = {"h": (a, 14, b, 14), "v": (14, a, 14, b), "d": (a, a, b, b)}[angle]
            draw.line(line, fill=255, width=int(rng.integers(2, 4)))
            picture.save(folder / f"{i}.png")
    return str(root)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    return _digit_folder(tmp_path_factory.mktemp("bars"))


def tiny(dataset: str, **changes) -> SimConfig:
    base = SimConfig(
        dataset=dataset,
        samples_per_gen=40,
        test_size=30,
        generations=2,
        train_steps=4,
        sample_steps=2,
        probe_embedder="random:tiny",
        probe_size=20,
        loop="fresh",
        contamination=0.5,
    )
    return replace(base, **changes)


def test_tiny_diffusion_run_writes_metrics_grids_and_report(dataset, tmp_path):
    result = simulate(
        tiny(dataset, filter="all", jpeg_quality=90, transform_rate=0.5, reweight="tails:0.05"), out=tmp_path
    )
    rows = result.rows
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert rows[0]["model"] == "diffusion" and rows[0]["pool_synthetic"] == 0
    for column in (
        "fid",
        "precision",
        "recall",
        "density",
        "coverage",
        "class_entropy",
        "seconds_fit",
        "tpr_watermark",
        "fpr_probe",
        "tpr_neardup",
        "tpr_filter",
    ):
        assert column in rows[-1], column
    assert rows[-1]["pool_synthetic"] == 20 and rows[-1]["pool_real"] == 20
    for g in range(3):
        assert (tmp_path / "samples" / "config-000" / f"g{g:03d}.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "report.html").read_text()
    assert "Samples per generation" in html and html.count('alt="generation') == 3
    assert list((tmp_path / "checkpoint" / "config-000").glob("model-g002.safetensors"))


def test_published_watermarks_are_found_and_real_images_are_not(dataset, tmp_path):
    """The real watermark detector, run on what `publish` renders: every marked file and no real one."""
    from loops.images.curator import Curator
    from loops.images.datasets import load_image_data
    from loops.images.publish import PublishSettings, render

    data = load_image_data(dataset, 16, 10)
    images = data.train_images[:24]
    rng = np.random.default_rng(3)
    curator = Curator(("watermark",), tmp_path, "random:tiny", 0.0)
    settings = PublishSettings(watermark_rate=0.5)
    synthetic = render(images, True, rng, settings)
    real = render(images, False, rng, settings)
    assert 0 < synthetic.watermarked.sum() < len(images) and not real.watermarked.any()
    assert (curator.flags(synthetic.files, "s")["watermark"] == synthetic.watermarked).all()
    assert not curator.flags(real.files, "r")["watermark"].any()
    from loops.images.publish import scrape

    for published in (synthetic, real):  # without transforms, scraping gives back the very pixels
        assert (np.stack([scrape(f, 16) for f in published.files]) == images).all()


def test_filter_rates_match_ground_truth(dataset):
    """With every synthetic file marked (PNG), the watermark filter removes exactly the synthetic items."""
    marked = simulate(tiny(dataset, filter="watermark", watermark_rate=1.0)).rows[1:]
    unmarked = simulate(tiny(dataset, filter="watermark", watermark_rate=0.0)).rows[1:]
    for row in marked:
        assert row["tpr_watermark"] == 1.0 and row["fpr_watermark"] == 0.0 and row["tpr_filter"] == 1.0
        assert row["kept_synthetic"] == 0 and row["kept_real"] == row["pool_real"]
    for row in unmarked:
        assert row["tpr_watermark"] == 0.0 and row["kept_synthetic"] == row["pool_synthetic"]
    assert [r["fid"] for r in marked] != [r["fid"] for r in unmarked]


def test_oracle_and_probe_rates_are_consistent_with_kept_counts(dataset):
    rows = simulate(tiny(dataset, filter="probe")).rows
    for row in rows[1:]:
        removed_synthetic = row["pool_synthetic"] - row["kept_synthetic"]
        assert row["tpr_filter"] == removed_synthetic / row["pool_synthetic"] == row["tpr_probe"]
        assert row["fpr_filter"] == (row["pool_real"] - row["kept_real"]) / row["pool_real"] == row["fpr_probe"]
    oracle = simulate(tiny(dataset, filter="oracle")).rows[1:]
    assert all(r["kept_synthetic"] == 0 and r["kept_real"] == r["pool_real"] for r in oracle)


def test_interrupted_diffusion_run_resumes_identically(dataset, tmp_path):
    config = tiny(dataset, filter="all", generations=3)
    whole = simulate(config)

    class Interrupt(Exception):
        pass

    def stop(done, total):
        if done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        simulate(config, out=tmp_path, progress=stop)
    resumed = simulate(config, out=tmp_path, resume=True)
    assert without_timings(resumed.rows) == without_timings(whole.rows)


def test_a_shared_fit_cache_trains_generation_0_once_and_changes_no_result(dataset, tmp_path, monkeypatch):
    from loops.models.diffusion import DiffusionModel

    configs = [tiny(dataset, contamination=c, generations=1) for c in (0.5, 1.0)]
    uncached = [simulate(c) for c in configs]
    trained = []
    train_network = DiffusionModel._train_network

    def counted(self, seed, x, y, w):
        trained.append(seed)
        return train_network(self, seed, x, y, w)

    monkeypatch.setattr(DiffusionModel, "_train_network", counted)
    cached = [simulate(c, fit_cache=tmp_path / "fits") for c in configs]
    assert len(trained) == 3  # generation 0 (real images only) is the same fit in both configurations
    assert len(set(trained)) == 2
    for a, b in zip(cached, uncached):
        assert without_timings(a.rows) == without_timings(b.rows)
    assert len(list((tmp_path / "fits").glob("*.safetensors"))) == 1  # only first fits are kept


def test_zero_weights_train_exactly_as_the_subset(dataset):
    from loops.images.datasets import load_image_data
    from loops.models.diffusion import PRESETS, DiffusionModel

    data = load_image_data(dataset, 16, 10)
    x, y = data.train_images[None, :30], data.train_labels[None, :30]
    preset = replace(PRESETS["cpu"], train_steps=3, sample_steps=2)
    weights = np.ones((1, 30))
    weights[0, ::3] = 0
    a = DiffusionModel([np.random.default_rng(1)], preset, data.classes)
    a.fit(x, y, weights)
    b = DiffusionModel([np.random.default_rng(1)], preset, data.classes)
    keep = weights[0] > 0
    b.fit(x[:, keep], y[:, keep])
    labels = np.zeros((1, 8), int)
    assert (a.sample(8, y=labels) == b.sample(8, y=labels)).all()
    restored = DiffusionModel([np.random.default_rng(2)], preset, data.classes)
    restored.load_state(a.state())
    again = DiffusionModel([np.random.default_rng(2)], preset, data.classes)
    again.load_state(b.state())
    assert (restored.sample(8, y=labels, bias=1 / 3) == again.sample(8, y=labels, bias=1 / 3)).all()


def test_guidance_and_lambda_are_one_setting(dataset):
    assert resolve(SimConfig(dataset=dataset, guidance=2.0))[0].bias == pytest.approx(1 / 3)
    assert resolve(SimConfig(dataset=dataset, bias=0.25))[0].guidance == pytest.approx(3.0)
    config = resolve(SimConfig(dataset=dataset))[0]
    assert config.model == "diffusion" and config.guidance == 0 and config.diffusion_preset == "cpu"
    for bad, message in [
        (dict(guidance=2.0, bias=0.5), "disagree"),
        (dict(bias=2.0), "at most 1"),
        (dict(filter_tpr=0.5, filter="watermark"), "real detectors"),
        (dict(data="gaussian"), "--dataset"),
    ]:
        with pytest.raises(ConfigError, match=message):
            resolve(SimConfig(dataset=dataset, **bad))
    with pytest.raises(ConfigError, match="diffusion backend only"):
        resolve(SimConfig(guidance=1.0))
    with pytest.raises(ConfigError, match="needs --dataset"):
        resolve(SimConfig(model="diffusion"))


def test_missing_probe_weights_are_a_clear_error(dataset, monkeypatch):
    import audit.embedding.embedder

    def offline(spec):
        raise audit.embedding.embedder.WeightsMissing("CLIP weights for ViT-B-32/openai are not on this machine.")

    monkeypatch.setattr(audit.embedding.embedder, "resolve_weights", offline)
    with pytest.raises(ConfigError, match="random-weights embedder"):
        simulate(tiny(dataset, filter="probe", probe_embedder="ViT-B-32/openai"))


def test_image_datasets_split_once_and_never_overlap(dataset, tmp_path):
    from loops.images.datasets import load_image_data

    data = load_image_data(dataset, 16, 30)
    again = load_image_data(dataset, 16, 30)
    assert (data.test_images == again.test_images).all() and len(data.train_images) == 90
    from collections import Counter

    from loops.images.datasets import _class_folders, resize_grey

    every = Counter(x.tobytes() for x in resize_grey(_class_folders(Path(dataset))[0], 16))
    split = Counter(x.tobytes() for x in data.train_images) + Counter(x.tobytes() for x in data.test_images)
    assert split == every  # a partition: each image is in exactly one part
    assert data.classes == 3 and data.test_images.shape[1:] == (16, 16)
    with pytest.raises(ConfigError, match="class subfolders"):
        load_image_data(str(tmp_path / "nothing"), 16, 5)


def test_mnist_dataset_uses_the_splits_the_folder_holds():
    from loops.images.datasets import load_image_data

    data = load_image_data(f"mnist:{shared_data('mnist')}", 16, 1000)
    assert len(data.train_images) + len(data.test_images) == 10_000  # t10k only: the train images are absent
    assert data.classes == 10 and abs(data.class_histogram().sum() - 1) < 1e-9


def test_tail_weights_counter_variance_shrinkage_on_the_gaussian():
    """alpha = 1/N cancels the MLE refit's expected (1 - 1/N) shrinkage; a large alpha overshoots."""

    def final_variance(reweight):
        config = SimConfig(
            loop="fully-synthetic",
            repeats=200,
            generations=20,
            samples_per_gen=50,
            metrics=("moments",),
            reweight=reweight,
            bias=1.0,
        )
        return next(iter(simulate(config).summary["final"].values()))["var_ratio"]["mean"]

    assert final_variance(None) < 0.8  # (1 - 1/50)^20 = 0.67
    assert 0.85 < final_variance("tails") < 1.2
    assert final_variance("tails:0.1") > 2


def test_from_scan_runs_the_estimate_and_its_interval(tmp_path):
    summary = {"estimate": {"point": 0.2, "interval": [0.1, 0.3], "lower_bound": 0.05}, "config": {}}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    (tmp_path / "report.html").write_text("<html></html>")
    result = simulate(SimConfig(generations=2, repeats=2, filter="watermark"), from_scan=path, out=tmp_path / "sim")
    assert sorted(c.contamination for c in result.configs) == [0.1, 0.2, 0.3]
    record = result.summary["from_scan"]
    assert record["contamination"] == {"0.1": "interval low", "0.2": "point estimate", "0.3": "interval high"}
    assert any("contamination from the scan" in n for n in result.summary["notes"])
    html = (tmp_path / "sim" / "report.html").read_text()
    assert "From the scan" in html and (tmp_path / "report.html").resolve().as_uri() in html
    with pytest.raises(ConfigError, match="give one"):
        simulate(SimConfig(contamination=0.5), from_scan=path)


def test_cli_dataset_run(dataset, tmp_path):
    from loops.cli import simulate as command

    args = [
        "--dataset",
        dataset,
        "--samples-per-gen",
        "40",
        "--test-size",
        "30",
        "--generations",
        "1",
        "--train-steps",
        "2",
        "--sample-steps",
        "2",
        "--filter",
        "watermark",
        "--contamination",
        "0.5",
        "--guidance",
        "2",
        "--out",
        str(tmp_path),
        "--format",
        "json",
    ]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["configs"][0]["guidance"] == 2.0 and summary["configs"][0]["model"] == "diffusion"
    bad = CliRunner().invoke(command, args + ["--filter-tpr", "0.5"])
    assert bad.exit_code == 2 and "real detectors" in bad.output


def test_hugging_face_datasets_path_reads_a_local_imagefolder(dataset):
    """hf:NAME goes through `datasets.load_dataset`; a local folder is its imagefolder builder
    (class subfolders become a ClassLabel column), so the path runs offline."""
    from loops.images.datasets import load_image_data

    data = load_image_data(f"hf:{dataset}", 16, 30)
    folder = load_image_data(dataset, 16, 30)
    assert data.classes == 3 and len(data.train_images) == len(folder.train_images) == 90
    assert sorted(data.class_names) == ["class-0", "class-1", "class-2"]


def test_ema_and_x0_clipping_keep_samples_in_range(dataset):
    """The sampling network is the EMA copy (not the last step's weights) and samples stay in 0..255."""
    from loops.images.datasets import load_image_data
    from loops.models.diffusion import PRESETS, DiffusionModel

    data = load_image_data(dataset, 16, 10)
    preset = replace(PRESETS["cpu"], train_steps=3, sample_steps=2)
    model = DiffusionModel([np.random.default_rng(0)], preset, data.classes)
    model.fit(data.train_images[None, :30], data.train_labels[None, :30])
    assert not any(p.requires_grad for p in model.nets[0].parameters())  # the EMA copy, never trained directly
    samples = model.sample(6, y=np.zeros((1, 6), int), bias=1 / 3)
    assert samples.dtype == np.uint8 and samples.shape == (1, 6, 16, 16)


@pytest.mark.slow
def test_guidance_does_not_lower_label_agreement_on_mnist(tmp_path):
    """The CFG check of examples/mnist_study.py (generation 0 of the study: 1,000 real MNIST images,
    the cpu network): label agreement at w = 2 is at least that at w = 0, and FID at w = 0 lies within
    3x the real-vs-real floor. Several minutes on 2 CPU cores."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    try:
        from mnist_study import cfg_check
    finally:
        sys.path.pop(0)
    report = cfg_check(f"mnist:{shared_data('mnist')}", tmp_path, train_steps=1500)
    print(report)
    assert report["w=0"]["fid"] < 3 * report["floor"]["fid"]
    assert report["agreement_does_not_fall"], [report[f"w={w}"]["label_agreement"] for w in (0, 1, 2)]
