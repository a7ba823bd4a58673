"""Control characters from the data (terminal escapes, OSC title and link sequences, C0/C1 codes,
bidi overrides) never reach a terminal or a text output raw: console tables and messages,
`--format github` (annotations and step summary), report.md and report.html show them escaped."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit.cli import main
from audit.report.safe_text import safe_text
from tests.conftest import image_bytes, noise_image

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
HOSTILE_NAMES = [
    "\x1b]0;pwned\x07title.png",  # OSC 0: retitles the terminal
    "\x1b]8;;evil.example\x1b\\link\x1b]8;;\x1b\\.png",  # OSC 8: a hidden link
    "\x1b[2J\x1b[Hclear.png",  # CSI: clears the screen
    "c1\x9b31mred.png",  # a C1 CSI
    "bidi\u202egnp.exe.png",  # a right-to-left override
]


def test_safe_text_escapes_every_control_character_visibly():
    text = "a\x1b]0;t\x07b\x00c\x7fd\x9be\u202ef\u2066g\r\nh\ti"
    assert not RAW.search(safe_text(text))
    assert safe_text(text) == r"a\x1b]0;t\x07b\x00c\x7fd\x9be\u202ef\u2066g\x0d\x0ah\x09i"
    assert safe_text(text, keep_layout=True).endswith("\\x0d\nh\ti")
    assert safe_text("plain ünïcode 名前.png") == "plain ünïcode 名前.png"


def _marked(seed: int, generator_text: str = "a cat\nSteps: 20, Sampler: Euler a") -> bytes:
    info = PngInfo()
    info.add_text("parameters", generator_text)
    return image_bytes(noise_image(seed=seed), "PNG", pnginfo=info)


@pytest.fixture
def hostile_scan(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    for i, name in enumerate(HOSTILE_NAMES):
        (src / name).write_bytes(_marked(i))
        (src / ("broken-" + name)).write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    summary_file = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    result = CliRunner().invoke(
        main, ["scan", str(src), "--out", str(tmp_path / "out"), "--workers", "0", "--format", "github", "--quiet"]
    )
    return tmp_path, result, summary_file


def test_no_raw_control_character_in_any_output(hostile_scan):
    tmp_path, result, summary_file = hostile_scan
    assert result.exit_code == 0, result.output
    outputs = {
        "console and annotations": result.output,
        "step summary": summary_file.read_text(),
        "report.md": (tmp_path / "out" / "report.md").read_text(),
        "report.html": (tmp_path / "out" / "report.html").read_text(),
    }
    for where, text in outputs.items():
        found = RAW.findall(text.replace("\n", "").replace("\t", ""))
        assert not found, f"{where} holds raw control characters {found!r}"
    assert r"\x1b]0;pwned\x07title.png" in outputs["report.md"]  # shown, escaped
    assert "::warning" in result.output


def test_the_source_not_found_message_is_escaped(tmp_path):
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "\x1b]0;pwned\x07nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    flat = result.output.replace("\n", "")  # the console wraps long lines
    assert not RAW.search(flat) and r"\x1b]0;pwned\x07nope" in flat
