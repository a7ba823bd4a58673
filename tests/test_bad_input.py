"""A generated corpus of hostile and unusual files scans to completion: one error row per bad
item, correct pixels for the unusual-but-valid ones, no loops, nothing unpickled."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from audit import ScanConfig, scan
from audit.sources import iter_records
from tests.conftest import image_bytes, noise_image

PIXEL_LIMIT = 1_000_000


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    return image_bytes(noise_image((64, 48)), "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [noise_image((32, 32), seed=i).convert("P") for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    im = noise_image((32, 32)).convert("P")
    return image_bytes(im, "PNG", transparency=0)


GOOD = {  # unusual but valid: must decode
    "cmyk.jpg": lambda: image_bytes(noise_image().convert("CMYK"), "JPEG"),
    "gray16.png": lambda: image_bytes(Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16)), "PNG"),
    "palette_transparent.png": _palette_with_transparency,
    "animated.gif": _animated_gif,
    "exif_rotated.jpg": _exif_rotated_jpeg,
    "la.png": lambda: image_bytes(noise_image().convert("LA"), "PNG"),
    "no_extension_but_png": lambda: image_bytes(noise_image(), "PNG"),
    "sub/dir/nested.webp": lambda: image_bytes(noise_image(), "WEBP"),
}
BAD = {  # each must become exactly one error row with this reason prefix
    "empty.png": (lambda: b"", "empty file"),
    "truncated.jpg": (lambda: image_bytes(noise_image((256, 256)), "JPEG")[:600], "corrupt image"),
    "not_an_image.png": (lambda: b"hello, I am text\n" * 10, "not an image"),
    "garbage_after_magic.png": (lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(200), "corrupt image"),
    "bomb.png": (lambda: image_bytes(Image.new("L", (2000, 2000))), "decompression bomb"),
}


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    for name, make in GOOD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(make())
    for name, (make, _) in BAD.items():
        (root / name).write_bytes(make())
    (root / "notes.txt").write_text("not an image and not named like one: skipped, no row")
    os.symlink("does-not-exist.png", root / "dangling.png")
    os.symlink("selfloop.png", root / "selfloop.png")  # ELOOP on open
    os.symlink(".", root / "sub" / "loop_to_parent")  # a directory loop
    os.symlink(str(root), root / "sub" / "dir" / "loop_to_root")
    non_utf8 = os.fsencode(str(root)) + b"/caf\xe9.png"
    with open(non_utf8, "wb") as f:
        f.write(image_bytes(noise_image(), "PNG"))
    return root


def test_bad_input_corpus_scans_to_completion(corpus, tmp_path):
    result = scan(str(corpus), tmp_path / "out", config=ScanConfig(pixel_limit=PIXEL_LIMIT), workers=0)
    rows = {r["id"]: r for r in result.rows}

    for name, (_, reason) in BAD.items():
        assert rows[name]["status"] == "error", name
        assert rows[name]["error"].startswith(reason), (name, rows[name]["error"])
    for name in ("dangling.png", "selfloop.png"):
        assert rows[name]["status"] == "error" and rows[name]["error"].startswith("unreadable"), rows[name]
    for name in GOOD:
        assert rows[name]["status"] == "ok", (name, rows[name]["error"])
    assert rows["caf\\xe9.png"]["status"] == "ok"  # undecodable name: escaped id, still scanned
    assert "notes.txt" not in rows
    # the directory links are followed once at most: every image appears once
    assert len(result.rows) == len(GOOD) + len(BAD) + 3
    assert result.summary["counts"]["error"] == len(BAD) + 2
    assert result.summary["errors"]["by_reason"]["decompression bomb"] == 1


def test_unusual_modes_decode_to_correct_pixels(corpus):
    records = {r.id: r for r in iter_records(str(corpus))}
    rotated = records["exif_rotated.jpg"].decoded()
    assert (rotated.width, rotated.height) == (48, 64)  # orientation applied
    gray16 = records["gray16.png"].decoded()
    assert gray16.rgb.shape == (20, 30, 3) and abs(int(gray16.rgb[0, 0, 0]) - 40000 // 257) <= 1
    assert records["palette_transparent.png"].decoded().alpha is not None
    assert records["animated.gif"].decoded().frames == 3
    assert records["cmyk.jpg"].decoded().mode == "CMYK"
    assert records["cmyk.jpg"].decoded().rgb.dtype == np.uint8


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_an_error_row(tmp_path):
    path = tmp_path / "locked.png"
    path.write_bytes(image_bytes(noise_image()))
    path.chmod(0)
    (record,) = iter_records(str(tmp_path))
    assert record.decoded() is None and record.error.startswith("unreadable")


class _Boom:
    """Unpickling this would create a file: proof that nothing was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _shard(path, members) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            _add(tar, name, data)


def test_webdataset_shards_with_hostile_members(tmp_path):
    marker = tmp_path / "UNPICKLED"
    shards = tmp_path / "shards"
    shards.mkdir()
    png = image_bytes(noise_image())
    _shard(
        shards / "shard-000.tar",
        [
            ("000/a.png", png),
            ("000/a.txt", b"a caption"),
            ("000/a.json", b"{}"),
            ("001/b.pkl", pickle.dumps(_Boom(str(marker)))),
            ("001/b.pt", pickle.dumps(_Boom(str(marker)))),
            ("../escape.png", png),
            ("/abs/path.png", png),
        ],
    )
    _shard(shards / "shard-001.tar", [("002/c.jpg", image_bytes(noise_image(), "JPEG")), ("002/d.png", b"broken")])
    full = (shards / "shard-001.tar").read_bytes()
    (shards / "shard-002.tar").write_bytes(full[: len(full) - 1500])  # truncated shard

    for spec in (str(shards), str(shards / "shard-{000..002}.tar"), str(shards / "shard-*.tar")):
        rows = {r["id"]: r for r in scan(spec, workers=0).rows}
        assert rows["shard-000.tar/000/a"]["status"] == "ok"  # the id is the sample key
        assert (rows["shard-000.tar/000/a"]["key"], rows["shard-000.tar/000/a"]["caption"]) == ("000/a", "a caption")
        assert "shard-000.tar/000/a.txt" not in rows
        for hostile in ("001/b.pkl", "001/b.pt", "../escape.png", "/abs/path.png"):
            assert rows[f"shard-000.tar/{hostile}"]["status"] == "error", hostile
        assert "never loaded" in rows["shard-000.tar/001/b.pkl"]["error"]
        assert "unsafe" in rows["shard-000.tar/../escape.png"]["error"]
        assert rows["shard-001.tar/002/c"]["status"] == "ok"
        assert rows["shard-001.tar/002/d"]["status"] == "error"
        assert any(i.startswith("shard-002.tar/") and r["status"] == "error" for i, r in rows.items())
    assert not marker.exists()


def test_missing_source_is_a_source_error(tmp_path):
    from audit.sources import SourceError

    with pytest.raises(SourceError):
        scan(str(tmp_path / "nope"), workers=0)


def test_oversized_files_are_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr("audit.sources.record.MAX_FILE_BYTES", 100)
    (tmp_path / "big.png").write_bytes(image_bytes(noise_image()))
    _shard(tmp_path / "s.tar", [("0/big.png", image_bytes(noise_image()))])
    for spec in (str(tmp_path / "big.png"), str(tmp_path / "s.tar")):
        (record,) = iter_records(spec)
        assert record.read_bytes() is None and record.error.startswith("file too large"), record.error
