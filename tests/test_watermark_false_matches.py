"""The watermark test's multiple-testing correction: every key in both channel orders is tested, so
the per-image false-match chance stays under `p_threshold`, and a scan reports the matches expected
on unmarked images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import binom

from audit.detectors import watermark
from audit.detectors.base import SYNTHETIC
from audit.detectors.watermark import (
    KNOWN_KEYS,
    ORDERS,
    WatermarkDetector,
    false_match_rate,
    key_cutoffs,
    match_p_value,
)

SDXL = next(k for k in KNOWN_KEYS if k.generator == "SDXL")


@dataclass
class _Image:
    rgb: np.ndarray
    width: int = 512
    height: int = 512


@dataclass
class _Record:
    image: _Image

    def decoded(self):
        return self.image


def detect_readouts(detector: WatermarkDetector, readouts: dict[str, np.ndarray], monkeypatch):
    """The detector's verdict when the BGR and RGB readouts are the given block bits."""
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[:, :, 2] = 1  # the detector reads the BGR order first: pixels[..., 0] == 1 there
    monkeypatch.setattr(watermark, "block_bits", lambda pixels: readouts["BGR" if pixels[0, 0, 0] else "RGB"])
    return detector.detect([_Record(_Image(rgb))])[0]


def sdxl_readout(matching: int, rng) -> np.ndarray:
    bits = np.array(SDXL.bits, dtype=np.float64)
    wrong = rng.choice(len(bits), len(bits) - matching, replace=False)
    bits[wrong] = 1 - bits[wrong]
    return np.tile(bits, 8)  # 8 blocks vote for each key bit


def test_exact_binomial_tail_matches_scipy():
    for length in (8, 32, 48, 64, 136, 224):
        for matches in range(-1, length + 2):
            assert match_p_value(matches, length) == pytest.approx(
                float(binom.sf(matches - 1, length, 0.5)), rel=1e-9, abs=1e-300
            )


def test_the_bits_needed_keep_the_false_match_chance_under_the_threshold():
    lengths = [len(k.bits) for k in KNOWN_KEYS]
    for p_threshold in (1e-9, 1e-6, 1e-3, 0.05):
        cutoffs = key_cutoffs(lengths, p_threshold)
        assert false_match_rate(lengths, cutoffs) <= p_threshold
        # one bit fewer for any key would have spent more than that key's share of what was left
        assert all(len(ORDERS) * match_p_value(m - 1, n) > p_threshold / len(lengths) for m, n in zip(cutoffs, lengths))
    one = key_cutoffs([48], 1e-6)
    assert match_p_value(one[0], 48) < 1e-6 / 2 <= match_p_value(one[0] - 1, 48)  # one key: Bonferroni over 2 orders


def test_the_known_keys_need_corrected_bit_counts():
    detector = WatermarkDetector()
    needed = dict(zip((k.generator for k in KNOWN_KEYS), detector.cutoffs))
    assert needed["SDXL"] == 42 and needed["Stable Diffusion 2.x"] == 30  # 41/48 (p = 3.1e-7) no longer counts
    assert detector.tests == 10 and detector.false_match_rate < 1e-6
    assert WatermarkDetector(p_threshold=1e-6 * 10).cutoffs[3] <= 41  # the old per-test rule let 41/48 through


def test_41_of_48_sdxl_bits_are_no_evidence_and_42_are(monkeypatch):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 2, 48 * 8).astype(np.float64)
    for matching, synthetic in ((41, False), (42, True)):
        signal = detect_readouts(WatermarkDetector(), {"BGR": noise, "RGB": sdxl_readout(matching, rng)}, monkeypatch)
        assert (signal.decision == SYNTHETIC) == synthetic, signal
        assert f"SDXL {matching}/48 bits (RGB)" in signal.evidence


def test_random_readouts_match_no_more_often_than_the_reported_rate(monkeypatch):
    """At a loose threshold the chance is measurable: random key bits for every key in both orders."""
    rng = np.random.default_rng(1)
    monkeypatch.setattr(watermark, "vote", lambda bits, length: rng.integers(0, 2, length, dtype=np.uint8))
    detector = WatermarkDetector(p_threshold=0.05)
    images = 3000
    readout = np.zeros(1024)
    flagged = sum(
        detect_readouts(detector, {o: readout for o in ORDERS}, monkeypatch).decision == SYNTHETIC
        for _ in range(images)
    )
    expected = detector.false_matches(images)["expected_false_matches"]
    assert detector.false_match_rate <= 0.05
    assert flagged <= expected + 4 * np.sqrt(expected)  # a union bound: at most the rate, up to noise
    assert flagged >= 0.5 * expected  # and not far below it: the tests overlap little


def test_summary_reports_expected_false_matches(tmp_path):
    from PIL import Image

    from audit import scan

    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (260, 260, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    Image.new("RGB", (64, 64)).save(tmp_path / "small.png")  # too small to test
    summary = scan(str(tmp_path), workers=0).summary
    wm = summary["watermark"]
    assert wm["tested"] == 3 and wm["tests_per_image"] == 10
    assert wm["expected_false_matches"] == pytest.approx(3 * wm["false_match_rate"])
    assert wm["bits_needed"]["SDXL"] == "42/48"
