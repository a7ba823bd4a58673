"""`audit export` re-publishes only what the scan read as safe: no `..`, absolute, link, hardlink,
device or pickle member reaches a clean shard; a `#` in a folder or file name never changes which
file export reads; `--to -` writes the list to standard output; counts name samples and members."""

from __future__ import annotations

import io
import json
import os
import tarfile

from click.testing import CliRunner
from PIL.PngImagePlugin import PngInfo

from audit import scan
from audit.cli import main
from tests.conftest import image_bytes, noise_image, write_tar


def _marked(seed: int) -> bytes:
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    return image_bytes(noise_image(seed=seed), "PNG", pnginfo=info)


def _export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


SAFE = ["000.png", "000.json", "001.png", "sub/", "sub/003.png"]
UNSAFE = ["../up.png", "/abs.png", "link.png", "hard.png", "dev.png", "fifo.png", "weights.pkl", "../notes.txt"]


def _hostile_shard(path) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        _add(tar, "000.png", image_bytes(noise_image(seed=0)))
        _add(tar, "000.json", json.dumps({"key": "000"}).encode())
        _add(tar, "001.png", image_bytes(noise_image(seed=1)))
        _add(tar, "002.png", _marked(2))  # dropped by the rule
        _add(tar, "sub/", kind=tarfile.DIRTYPE)
        _add(tar, "sub/003.png", image_bytes(noise_image(seed=3)))
        _add(tar, "../up.png", image_bytes(noise_image(seed=4)))
        _add(tar, "/abs.png", image_bytes(noise_image(seed=5)))
        _add(tar, "link.png", kind=tarfile.SYMTYPE, link="/etc/passwd")
        _add(tar, "hard.png", kind=tarfile.LNKTYPE, link="000.png")
        _add(tar, "dev.png", kind=tarfile.CHRTYPE)
        _add(tar, "fifo.png", kind=tarfile.FIFOTYPE)
        _add(tar, "weights.pkl", b"\x80\x04N.")
        _add(tar, "../notes.txt", b"not an image")


def test_clean_shards_hold_only_members_the_scan_read_as_safe_regular_files(tmp_path):
    _hostile_shard(tmp_path / "s.tar")
    scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    result = _export(tmp_path / "out", "--write-shards", tmp_path / "clean")
    assert result.exit_code == 0, result.output
    with tarfile.open(tmp_path / "clean" / "s.tar") as tar:
        members = tar.getmembers()
    assert sorted(m.name for m in members) == sorted(n for n in SAFE if not n.endswith("/"))
    assert all(m.isfile() for m in members)
    assert "8 unsafe members left out" in " ".join(result.output.split())


def test_a_hash_in_a_folder_name_never_makes_export_read_another_file(tmp_path):
    write_tar(tmp_path / "evil.tar", [("x/a.png", _marked(1))])  # unrelated, beside the scanned folder
    folder = tmp_path / "evil.tar#x"
    folder.mkdir()
    (folder / "a.png").write_bytes(_marked(1))
    scan(str(folder), tmp_path / "out", workers=0)
    refused = _export(tmp_path / "out", "--write-shards", tmp_path / "clean")
    assert refused.exit_code == 2 and "tar" in refused.output
    assert not (tmp_path / "clean" / "evil.tar").exists()
    listed = _export(tmp_path / "out", "--to", tmp_path / "drop.txt")
    assert listed.exit_code == 0, listed.output
    assert (tmp_path / "drop.txt").read_text().split("\n")[0] == str(folder / "a.png")


def test_hashes_in_the_shard_path_and_member_names_split_right(tmp_path):
    folder = tmp_path / "a#b"
    folder.mkdir()
    write_tar(folder / "s#1.tar", [("k#1.png", _marked(1)), ("k#2.png", image_bytes(noise_image(seed=2)))])
    write_tar(tmp_path / "a", [("b/s#1.tar#k#1.png", b"decoy")])
    scan(str(folder / "s#1.tar"), tmp_path / "out", workers=0)
    result = _export(tmp_path / "out", "--write-shards", tmp_path / "clean")
    assert result.exit_code == 0, result.output
    with tarfile.open(tmp_path / "clean" / "s#1.tar") as tar:
        assert tar.getnames() == ["k#2.png"]


def test_the_list_goes_to_standard_output_for_a_dash(tmp_path, monkeypatch):
    write_tar(tmp_path / "s.tar", [("000.png", _marked(0)), ("001.png", image_bytes(noise_image(seed=1)))])
    scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", str(tmp_path / "out"), "--to", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["s.tar/000"]
    assert not os.path.exists(tmp_path / "-")


def test_export_counts_samples_and_members(tmp_path):
    members = []
    for i in range(3):
        data = _marked(i) if i == 0 else image_bytes(noise_image(seed=i))
        members += [(f"{i:03d}.png", data), (f"{i:03d}.json", json.dumps({"key": f"{i:03d}"}).encode())]
    write_tar(tmp_path / "s.tar", members)
    scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    result = _export(tmp_path / "out", "--write-shards", tmp_path / "clean")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "2 samples (4 members) kept" in said and "1 sample (2 members) dropped" in said


def test_a_hash_in_a_folder_name_never_changes_which_file_a_thumbnail_shows(tmp_path):
    from audit.report.html import thumbnail

    write_tar(tmp_path / "evil.tar", [("x/a.png", _marked(7))])  # another image, where a split at `#` points
    folder = tmp_path / "evil.tar#x"
    folder.mkdir()
    (folder / "a.png").write_bytes(_marked(1))
    scan(str(folder), tmp_path / "out", workers=0)
    page = (tmp_path / "out" / "report.html").read_text()
    assert thumbnail(_marked(1)) in page and thumbnail(_marked(7)) not in page
