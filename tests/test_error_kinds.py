"""results.parquet as a data engineer reads it: `error_kind` codes to group on beside the `error` message,
and scores that are null (not 0) when a detector found nothing; the codes are the documented ones."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit.cli import main
from audit.sources.error_kinds import CODES, ERROR_KINDS, OTHER, error_kind
from tests.conftest import image_bytes, noise_image

duckdb = pytest.importorskip("duckdb", reason="duckdb (the dev extra) reads the results")
README = Path(__file__).resolve().parents[1] / "README.md"


def _folder(root: Path, outside: Path) -> Path:
    root.mkdir()
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    for i in range(2):
        (root / f"clean{i}.png").write_bytes(image_bytes(noise_image(size=(300, 300), seed=i)))
    (root / "marked.png").write_bytes(image_bytes(noise_image(size=(300, 300), seed=5), "PNG", pnginfo=info))
    whole = image_bytes(noise_image(size=(300, 300), seed=7))
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (root / "notes.jpg").write_bytes(b"this is text, not a JPEG\n")
    (root / "empty.png").write_bytes(b"")
    (root / "huge.png").write_bytes(image_bytes(noise_image(size=(2000, 1000), seed=8)))
    outside.write_bytes(image_bytes(noise_image(seed=9)))
    os.symlink(outside, root / "link.png")
    return root


def test_error_kind_and_null_scores_in_results_parquet(tmp_path):
    src = _folder(tmp_path / "src", tmp_path / "outside.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(src),
            "--out",
            str(out),
            "--workers",
            "0",
            "--quiet",
            "--format",
            "json",
            "--pixel-limit",
            "1000000",
        ],
    )
    assert result.exit_code == 0, result.output
    results = str(out / "results.parquet")
    kinds = dict(
        duckdb.sql(f"SELECT error_kind, count(*) FROM read_parquet('{results}') GROUP BY error_kind").fetchall()
    )
    assert kinds == {
        None: 3,
        "decode_failed": 1,
        "unsupported_format": 1,
        "empty": 1,
        "too_many_pixels": 1,
        "outside_source": 1,
    }
    assert json.loads(result.stdout)["errors"]["by_kind"] == {k: n for k, n in kinds.items() if k}

    scores = duckdb.sql(
        f"SELECT id, metadata_score, watermark_score, watermark_decision FROM read_parquet('{results}') "
        "WHERE status = 'ok' ORDER BY id"
    ).fetchall()
    assert scores == [
        ("clean0.png", None, None, "no_evidence"),
        ("clean1.png", None, None, "no_evidence"),
        ("marked.png", 1.0, None, "no_evidence"),
    ]
    assert json.loads(result.stdout)["watermark"]["tested"] == 3  # tested although none has a score


@pytest.mark.parametrize(
    "message, code",
    [
        ("corrupt image: PNG signature but undecodable", "decode_failed"),
        ("image has zero width or height", "decode_failed"),
        ("not an image (unidentified format)", "unsupported_format"),
        ("empty cell", "empty"),
        ("file too large (600000000 bytes)", "too_large"),
        ("decompression bomb: 2000x1000 = 2000000 pixels exceeds the limit 1000000", "too_many_pixels"),
        ("outside the source: the path leads out of the source's folder; not read", "outside_source"),
        ("link leads outside the source; not followed (--follow-links all to follow it)", "outside_source"),
        ("link not followed (--follow-links none)", "link_not_followed"),
        ("tar member is a link or device, not a file; not read", "not_a_file"),
        ("unsafe tar member path (absolute or '..'); not read", "unsafe_member"),
        ("refused .pkl member: pickled objects are never loaded", "unsafe_member"),
        ("cell is a URL; remote images are not downloaded", "remote"),
        ("no image column (bytes, {bytes, path} struct or file paths) among columns: a", "no_image_column"),
        ("tar shard truncated or corrupt: unexpected end of data", "truncated"),
        ("unreadable: Permission denied", "read_failed"),
        ("dataset stream failed: ConnectionError", "read_failed"),
        ("took longer than the time budget (60 s, --item-timeout)", "timeout"),
        ("internal error: the worker process died on this item (a crash or out of memory)", "worker_died"),
        ("internal error: ValueError: boom (in the watermark detector)", "internal_error"),
        ("something nobody wrote yet", OTHER),
        (None, None),
    ],
)
def test_messages_map_to_their_codes(message, code):
    assert error_kind(message) == code


def test_every_code_is_documented_in_the_readme():
    documented = set(re.findall(r"^\| `([a-z_]+)` \| ", README.read_text(encoding="utf-8"), re.M))
    assert set(CODES) <= documented, set(CODES) - documented
    assert len(CODES) == len(set(CODES)) == len(ERROR_KINDS) + 1
