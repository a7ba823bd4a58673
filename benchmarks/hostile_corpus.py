"""A generated corpus of hostile inputs of many kinds, scanned as a folder, as webdataset shards
and as a parquet table with path cells, with 2 worker processes. Prints each kind with its row
status and reason, the slowest item (timed alone in this process), the scans' wall time and the
peak RSS of this process and of its workers. What the scan promises: docs/security.md.

    .venv/bin/python benchmarks/hostile_corpus.py [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import signal
import struct
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rich.console import Console
from rich.table import Table

from audit import ScanConfig, scan
from audit.engine.batch import init_worker, process_batch
from audit.sources import iter_records


def encoded(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def noise(w=64, h=48, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def png_with_ihdr(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims another size (a bomb or a zero size by header)."""
    data = bytearray(encoded(noise(), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


def exif_type_confusion() -> bytes:
    ifd = b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHI", 256, 2, 4) + b"abc\x00"
    ifd += struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<H", 6) + b"\x00\x00" + b"\x00" * 4
    return encoded(Image.fromarray(np.zeros((300, 200, 3), np.uint8)), "JPEG", exif=b"Exif\x00\x00" + ifd)


def text_png(key: str, text: str) -> bytes:
    info = PngInfo()
    info.add_itxt(key, text)
    return encoded(noise(), "PNG", pnginfo=info)


def mutated(data: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for i in rng.integers(0, len(out), 8):
        out[i] ^= 0xFF
    return bytes(out)


def other_format(fmt: str, mode: str) -> bytes:
    return encoded(Image.new(mode, (8, 8)), fmt)


FILES = {  # kind -> bytes, written as a file in the folder, a tar member and a parquet path cell
    "empty file": lambda: b"",
    "truncated JPEG": lambda: encoded(noise(256, 256), "JPEG")[:600],
    "text named .png": lambda: b"hello\n" * 20,
    "garbage after PNG magic": lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(300),
    "pixel bomb by header (100k x 100k)": lambda: png_with_ihdr(100_000, 100_000),
    "zero width by header": lambda: png_with_ihdr(0, 48),
    "EXIF type confusion": exif_type_confusion,
    "DDS named .png": lambda: other_format("DDS", "RGBA"),
    "SPIDER named .png": lambda: other_format("SPIDER", "F"),
    "quadratic-XMP bait (900 KB)": lambda: text_png("XML:com.adobe.xmp", "DigitalSourceType " * 50_000),
    "1 MB parameters chunk": lambda: text_png("parameters", "Steps: 1, Sampler: x, " * 50_000),
    "progressive JPEG": lambda: encoded(noise(512, 512), "JPEG", progressive=True),
    "GIF with 200 frames": lambda: encoded(
        noise(32, 32).convert("P"),
        "GIF",
        save_all=True,
        append_images=[noise(32, 32, s).convert("P") for s in range(199)],
    ),
    "16-bit PNG": lambda: encoded(Image.fromarray(np.full((20, 30), 40000, np.uint16)), "PNG"),
    "CMYK JPEG": lambda: encoded(noise().convert("CMYK"), "JPEG"),
    "mutated PNG": lambda: mutated(encoded(noise(), "PNG"), 1),
    "mutated JPEG": lambda: mutated(encoded(noise(), "JPEG"), 2),
    "mutated WebP": lambda: mutated(encoded(noise(), "WEBP"), 3),
    "mutated TIFF": lambda: mutated(encoded(noise(), "TIFF"), 4),
}


NAMES = {f"{i:02d}.png": kind for i, kind in enumerate(FILES)}


def kind_of(row_id: str, what: str) -> str:
    """The corpus kind behind a row id (file name, tar member or parquet row), else the id itself."""
    name = row_id.rsplit("/", 1)[-1]
    if what == "parquet" and name.isdigit():
        name = (
            list(NAMES)
            + ["cell ../outside/secret.png", "cell with an absolute path outside", "cell fifo.png", "cell /dev/zero"]
        )[int(name)]
    return NAMES.get(name, name)


def build(root: Path) -> dict[str, str]:
    """The corpus under root; returns source spec -> what it is."""
    folder = root / "folder"
    folder.mkdir()
    names = {kind: name for name, kind in NAMES.items()}
    for kind, make in FILES.items():
        (folder / names[kind]).write_bytes(make())
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(encoded(noise(), "PNG"))
    os.symlink(outside, folder / "link to a folder outside")
    os.symlink(outside / "secret.png", folder / "link to a file outside.png")
    os.symlink("missing.png", folder / "dangling link.png")
    os.symlink("loop.png", folder / "loop.png")
    os.mkfifo(folder / "fifo.png")
    members = [(names[k], make()) for k, make in FILES.items()]
    members += [
        ("../escape.png", b"x"),
        ("/abs.png", b"x"),
        ("model.pkl", b"\x80\x04."),
        ("a.png", b"x"),
        ("a.png", b"y"),
        ("a.png#1", b"z"),
        (os.fsdecode(b"bad\xff.png"), encoded(noise(), "PNG")),
    ]
    with tarfile.open(root / "shard.tar", "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    cells = [*names.values(), "../outside/secret.png", str(outside / "secret.png"), "fifo.png", "/dev/zero"]
    # the table lives outside the image folder (a folder of images and a parquet file is ambiguous) and
    # names its cells relative to that folder, as --paths-under says
    (root / "tables").mkdir()
    pq.write_table(pa.table({"path": cells}), root / "tables" / "table.parquet")
    PATHS_UNDER[str(root / "tables" / "table.parquet")] = str(folder)
    return {
        str(folder): "folder",
        str(root / "shard.tar"): "tar shard",
        str(root / "tables" / "table.parquet"): "parquet",
    }


PATHS_UNDER: dict[str, str] = {}  # source spec -> the folder its path cells are relative to


def source_config(spec: str) -> ScanConfig:
    return ScanConfig(paths_under=PATHS_UNDER.get(spec))


def slowest_alone(sources: dict[str, str]) -> tuple[float, str]:
    """Each item of every source through the worker's per-item path alone, in this process."""
    init_worker(ScanConfig().resolved(), None)
    slowest = (0.0, "")
    for spec in sources:
        for seq, record in enumerate(iter_records(spec, paths_under=PATHS_UNDER.get(spec))):
            started = time.perf_counter()
            process_batch([(seq, record)])
            slowest = max(slowest, (time.perf_counter() - started, f"{sources[spec]}: {record.id}"))
    return slowest


# Around the scan: the files a scan and `audit export` write, what export re-publishes, saved
# Hugging Face folders and the text a scan prints. kind -> check(root folder) -> (held, what happened).
AROUND = {}


def around(kind: str):
    def register(check):
        AROUND[kind] = check
        return check

    return register


def _victim(root: Path) -> Path:
    victim = root / "victim.txt"
    victim.write_text("unrelated\n")
    return victim


def _plant(folder: Path, stem: str, suffix: str, victim: Path) -> None:
    """Links at the temporary names an older writer used (`.{stem}.tmp-{pid}{suffix}`) for nearby pids."""
    for pid in range(os.getpid() - 20, os.getpid() + 100):
        os.symlink(victim, folder / f".{stem}.tmp-{pid}{suffix}")


def _cli(*args: str):
    from click.testing import CliRunner

    from audit.cli import main as audit_main

    return CliRunner().invoke(audit_main, list(args))


@around("links at the scan's temporary names (summary, reports, results)")
def _links_in_out(root: Path) -> tuple[bool, str]:
    victim, out = _victim(root), root / "out"
    out.mkdir()
    for stem, suffix in (("summary", ".json"), ("report", ".md"), ("report", ".html"), ("results", ".parquet")):
        _plant(out, stem, suffix, victim)
    (root / "src").mkdir()
    (root / "src" / "a.png").write_bytes(encoded(noise(), "PNG"))
    scan(str(root / "src"), out, workers=0)
    return (
        victim.read_text() == "unrelated\n",
        "victim untouched" if victim.read_text() == "unrelated\n" else "overwritten",
    )


def _shard_scan(root: Path, members: list[tuple[str, bytes, bytes, str]]) -> Path:
    with tarfile.open(root / "s.tar", "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    scan(str(root / "s.tar"), root / "out", workers=0)
    return root / "out"


@around("export: --to FILE and --write-shards DIR/s.tar are links, links at temporary names")
def _export_links(root: Path) -> tuple[bool, str]:
    out, victim = _shard_scan(root, [("a.png", encoded(noise(), "PNG"), tarfile.REGTYPE, "")]), _victim(root)
    (root / "clean").mkdir()
    _plant(root / "clean", "s", ".tar", victim)
    _plant(root, "list", ".txt", victim)
    os.symlink(victim, root / "clean" / "s.tar")
    os.symlink(victim, root / "list.txt")
    code = _cli(
        "export", str(out), "--keep", "--to", str(root / "list.txt"), "--write-shards", str(root / "clean")
    ).exit_code
    held = code == 0 and victim.read_text() == "unrelated\n"
    return held, f"exit {code}, victim {'untouched' if victim.read_text() == 'unrelated' + chr(10) else 'overwritten'}"


UNSAFE_MEMBERS = {
    "member ../x.png": ("../x.png", tarfile.REGTYPE, ""),
    "absolute member": ("/abs.png", tarfile.REGTYPE, ""),
    "symlink member": ("sym.png", tarfile.SYMTYPE, "/etc/passwd"),
    "hardlink member": ("hard.png", tarfile.LNKTYPE, "a.png"),
    "device member": ("dev.png", tarfile.CHRTYPE, ""),
    "pickle member": ("w.pkl", tarfile.REGTYPE, ""),
}


def _unsafe_member_check(kind: str):
    def check(root: Path) -> tuple[bool, str]:
        name, type_, link = UNSAFE_MEMBERS[kind]
        data = b"\x80\x04N." if type_ == tarfile.REGTYPE else b""
        out = _shard_scan(root, [("a.png", encoded(noise(), "PNG"), tarfile.REGTYPE, ""), (name, data, type_, link)])
        code = _cli("export", str(out), "--write-shards", str(root / "clean")).exit_code
        with tarfile.open(root / "clean" / "s.tar") as tar:
            names = tar.getnames()
        return code == 0 and names == ["a.png"], f"exit {code}, clean shard holds {names}"

    return check


for _kind in UNSAFE_MEMBERS:
    around(f"export: {_kind}")(_unsafe_member_check(_kind))


@around("export: a folder named evil.tar#x beside an unrelated evil.tar")
def _hash_folder(root: Path) -> tuple[bool, str]:
    with tarfile.open(root / "evil.tar", "w") as tar:
        info = tarfile.TarInfo("x/a.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"xyz"))
    (root / "evil.tar#x").mkdir()
    (root / "evil.tar#x" / "a.png").write_bytes(text_png("parameters", "Steps: 20, Sampler: Euler a"))
    scan(str(root / "evil.tar#x"), root / "out", workers=0)
    code = _cli("export", str(root / "out"), "--write-shards", str(root / "clean")).exit_code
    copied = (root / "clean" / "evil.tar").exists()
    return code == 2 and not copied, f"exit {code}, evil.tar {'copied' if copied else 'not read'}"


def _saved_dataset(root: Path, escape: str) -> tuple[bool, str]:
    import json

    import datasets

    from audit.sources import SourceError

    datasets.disable_progress_bars()

    def save(folder: Path, split: str | None = None) -> None:
        ds = datasets.Dataset.from_dict(
            {"image": [{"bytes": encoded(noise(), "PNG"), "path": None}]},
            features=datasets.Features({"image": datasets.Image()}),
        )
        (datasets.DatasetDict({split: ds}) if split else ds).save_to_disk(str(folder))

    save(root / "other")
    target = root / "a" / "ds"
    save(target, "train" if escape == "split" else None)
    if escape == "split":
        (target / "dataset_dict.json").write_text(json.dumps({"splits": ["../../other"]}))
    elif escape == "link":
        os.remove(target / "data-00000-of-00001.arrow")
        os.symlink(root / "other" / "data-00000-of-00001.arrow", target / "data-00000-of-00001.arrow")
    else:
        state = json.loads((target / "state.json").read_text())
        state["_data_files"] = [{"filename": "../../other/data-00000-of-00001.arrow"}]
        (target / "state.json").write_text(json.dumps(state))
    try:
        rows = len(list(iter_records(f"hf:{target}")))
    except SourceError as e:
        return True, f"refused: {str(e)[:60]}..."
    return False, f"{rows} rows read from outside"


around("save_to_disk: state.json names ../../other/data.arrow")(lambda root: _saved_dataset(root, "state"))
around("save_to_disk: a data file linked outside")(lambda root: _saved_dataset(root, "link"))
around("save_to_disk: dataset_dict.json split ../../other")(lambda root: _saved_dataset(root, "split"))

CONTROL_NAMES = {
    "OSC 0 title in a file name": "\x1b]0;pwned\x07t.png",
    "OSC 8 link in a file name": "\x1b]8;;evil\x1b\\l\x1b]8;;\x1b\\.png",
    "CSI clear screen in a file name": "\x1b[2Jc.png",
    "C1 CSI in a file name": "c\x9b31m.png",
    "bidi override in a file name": "b\u202egnp.exe.png",
}
RAW_CONTROL = "".join(
    map(
        chr,
        [
            *range(0, 9),
            *range(11, 32),
            *range(0x7F, 0xA0),
            0x202A,
            0x202B,
            0x202C,
            0x202D,
            0x202E,
            0x2066,
            0x2067,
            0x2068,
            0x2069,
        ],
    )
)


def _control_check(kind: str):
    def check(root: Path) -> tuple[bool, str]:
        (root / "src").mkdir()
        name = CONTROL_NAMES[kind]
        (root / "src" / name).write_bytes(text_png("parameters", "Steps: 20, Sampler: Euler a"))
        (root / "src" / ("broken " + name)).write_bytes(b"not an image")
        os.environ["GITHUB_STEP_SUMMARY"] = str(root / "step.md")
        try:
            result = _cli("scan", str(root / "src"), "--out", str(root / "out"), "--workers", "0", "--format", "github")
        finally:
            del os.environ["GITHUB_STEP_SUMMARY"]
        texts = {
            "console": result.output,
            "step summary": (root / "step.md").read_text(),
            "report.md": (root / "out" / "report.md").read_text(),
            "report.html": (root / "out" / "report.html").read_text(),
        }
        raw = [where for where, text in texts.items() if any(c in RAW_CONTROL for c in text)]
        return (
            not raw,
            f"raw in {', '.join(raw)}" if raw else "escaped in console, step summary, report.md, report.html",
        )

    return check


for _kind in CONTROL_NAMES:
    around(f"text: {_kind}")(_control_check(_kind))


@around("text: 'source not found' for a name with a terminal escape")
def _missing_source(root: Path) -> tuple[bool, str]:
    result = _cli("scan", str(root / "\x1b]0;pwned\x07nope"), "--out", str(root / "out"))
    raw = any(c in RAW_CONTROL for c in result.output)
    return result.exit_code == 2 and not raw, f"exit {result.exit_code}, {'raw' if raw else 'escaped'}"


# --- the output folder a resume reads, the side files a scan reads, the embedding cache ------------

RESUME_IMAGES, RESUME_PART_ROWS = 12, 5  # three parts: 5, 5 and 2 rows


def _twelve(root: Path) -> Path:
    src = root / "src"
    src.mkdir()
    for i in range(RESUME_IMAGES):
        (src / f"{i:02d}.png").write_bytes(encoded(noise(16, 12, seed=i), "PNG"))
    return src


def _small_parts():
    import contextlib

    from audit.engine import results_store

    @contextlib.contextmanager
    def patched():
        old, results_store.PART_ROWS = results_store.PART_ROWS, RESUME_PART_ROWS
        try:
            yield
        finally:
            results_store.PART_ROWS = old

    return patched()


def _killed_scan(src: Path, out: Path, batches: int) -> None:
    """A scan stopped as by kill -9 after `batches` one-row batches: parts committed, the rest in the journal."""
    from audit.engine.results_store import ResultsStore

    real_append, real_close, done = ResultsStore.append, ResultsStore.close, []

    def append(self, rows, journal_cells=None):
        if len(done) == batches:
            raise KeyboardInterrupt
        done.append(1)
        real_append(self, rows, journal_cells)

    ResultsStore.append, ResultsStore.close = append, lambda self: self.journal.close()
    try:
        scan(str(src), out, workers=0, batch_size=1, config=ScanConfig(detectors=("metadata",)))
    except KeyboardInterrupt:
        pass
    finally:
        ResultsStore.append, ResultsStore.close = real_append, real_close


def _tampered_resume(root: Path, tamper, killed: bool = False, refuse: bool = False) -> tuple[bool, str]:
    """Scan 12 images (finished, or killed after 8), tamper with the output folder, resume with the CLI.
    Held: exit 0 with every row as a clean scan gives it, or exit 2 (`refuse`) with nothing on disk changed."""
    import pyarrow.parquet as pq_

    src, out = _twelve(root), root / "out"
    with _small_parts():
        reference = scan(
            str(src), root / "ref", workers=0, batch_size=1, config=ScanConfig(detectors=("metadata",))
        ).rows
        if killed:
            _killed_scan(src, out, 8)
        else:
            scan(str(src), out, workers=0, batch_size=1, config=ScanConfig(detectors=("metadata",)))
        tamper(out, root)
        before = {str(p): p.read_bytes() if p.is_file() else None for p in sorted(out.rglob("*")) if not p.is_fifo()}
        code = _cli(
            "scan",
            str(src),
            "--out",
            str(out),
            "--resume",
            "--quiet",
            "--detectors",
            "metadata",
            "--workers",
            "0",
            "--batch-size",
            "1",
        ).exit_code
    if refuse:
        after = {str(p): p.read_bytes() if p.is_file() else None for p in sorted(out.rglob("*")) if not p.is_fifo()}
        return (
            code == 2 and after == before,
            f"exit {code}, output folder {'unchanged' if after == before else 'CHANGED'}",
        )
    rows = pq_.read_table(out / "results.parquet").to_pylist() if code == 0 else []
    lost = sum(r not in rows for r in reference)
    return code == 0 and lost == 0, f"exit {code}, {lost} of {len(reference)} rows lost or altered"


def _part(out: Path, n: int) -> Path:
    return out / "results" / f"part-{n:06d}.parquet"


def _edit_journal_line(out: Path, _root: Path) -> None:
    journal = out / "results.journal.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"ok"', '"error"', 1)
    journal.write_text("".join(lines), encoding="utf-8")


def _append_journal_line(out: Path, _root: Path) -> None:
    journal = out / "results.journal.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    journal.write_text(
        "".join(lines) + lines[-1].replace('"seq"', '"seq"').replace("[[7,", "[[9,", 1), encoding="utf-8"
    )


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _drop_rows(path: Path) -> None:
    import pyarrow.parquet as pq_

    pq_.write_table(pq_.read_table(path).slice(0, 2), path)


def _fifo_at(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _foreign_part(out: Path, root: Path) -> None:
    import shutil

    shutil.copy(_part(root / "ref", 2), _part(out, 7))


def _edit_manifest_checksum(out: Path, _root: Path) -> None:
    import json

    manifest = json.loads((out / "results" / "manifest.json").read_text())
    manifest["parts"][0]["sha256"] = "0" * 64
    (out / "results" / "manifest.json").write_text(json.dumps(manifest))


TAMPERING = {  # kind -> (tamper(out, root), killed mid-scan first, refused with exit 2)
    "resume: a committed part deleted": (lambda out, _: _part(out, 0).unlink(), False, False),
    "resume: a committed part with rows removed": (lambda out, _: _drop_rows(_part(out, 1)), False, False),
    "resume: a committed part with a flipped byte": (lambda out, _: _flip_bytes(_part(out, 0)), False, False),
    "resume: a FIFO in place of a part": (lambda out, _: _fifo_at(_part(out, 1)), False, False),
    "resume: the manifest's checksum of a part edited": (_edit_manifest_checksum, False, False),
    "resume: a journal row edited": (_edit_journal_line, True, False),
    "resume: a journal row added for an image not scanned": (_append_journal_line, True, False),
    "resume: the journal deleted": (lambda out, _: (out / "results.journal.jsonl").unlink(), True, False),
    "resume: a FIFO in place of the journal": (lambda out, _: _fifo_at(out / "results.journal.jsonl"), True, False),
    "resume: a part of another scan added": (_foreign_part, False, True),
    "resume: the manifest deleted": (lambda out, _: (out / "results" / "manifest.json").unlink(), True, True),
}


def _register_tampering(kind: str, tamper, killed: bool, refuse: bool) -> None:
    around(kind)(lambda root: _tampered_resume(root, tamper, killed, refuse))


for _kind, (_tamper, _killed, _refuse) in TAMPERING.items():
    _register_tampering(_kind, _tamper, _killed, _refuse)


@around("resume: refused (other detectors) after a finished scan")
def _refused_resume(root: Path) -> tuple[bool, str]:
    src, out = _twelve(root), root / "out"
    scan(str(src), out, workers=0, config=ScanConfig(detectors=("metadata",)))
    before = {str(p): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    code = _cli("scan", str(src), "--out", str(out), "--resume", "--quiet", "--detectors", "watermark").exit_code
    after = {str(p): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return code == 2 and after == before, f"exit {code}, output folder {'unchanged' if after == before else 'CHANGED'}"


def _baseline_case(root: Path, spoil) -> tuple[bool, str]:
    """A --baseline whose summary.json `spoil` changed: held when exit 2 names the file and nothing was scanned."""
    src = _twelve(root)
    scan(str(src), root / "old", workers=0, config=ScanConfig(detectors=("metadata",)))
    spoil(root / "old" / "summary.json")
    result = _cli(
        "scan",
        str(src),
        "--out",
        str(root / "new"),
        "--quiet",
        "--detectors",
        "metadata",
        "--baseline",
        str(root / "old"),
    )
    scanned = (root / "new" / "results").exists()
    named = "summary.json" in result.output.replace("\n", "")
    return (
        result.exit_code == 2 and named and not scanned,
        f"exit {result.exit_code}, {'file named' if named else 'file not named'}, {'scanned first' if scanned else 'before the scan'}",
    )


def _rewrite_json(path: Path, change) -> None:
    import json

    summary = json.loads(path.read_text())
    change(summary)
    path.write_text(json.dumps(summary))


NESTED_JSON = "[" * 100_000 + "]" * 100_000
SPOILED_BASELINES = {
    "side file: a baseline summary with estimate {}": lambda p: _rewrite_json(p, lambda s: s.update(estimate={})),
    "side file: a baseline summary with string fields": lambda p: _rewrite_json(
        p, lambda s: s["estimate"].update(point="0.5", interval="wide")
    ),
    "side file: a baseline summary nested 100,000 deep": lambda p: p.write_text(NESTED_JSON),
    "side file: a FIFO as the baseline summary": lambda p: (p.unlink(), os.mkfifo(p)),
    "side file: NaN in a baseline summary": lambda p: p.write_text(
        p.read_text().replace('"point": 0.0', '"point": NaN')
    ),
}
for _kind, _spoil in SPOILED_BASELINES.items():
    around(_kind)(lambda root, spoil=_spoil: _baseline_case(root, spoil))


@around("side file: a calibration.json nested 100,000 deep")
def _nested_calibration(root: Path) -> tuple[bool, str]:
    src = _twelve(root)
    (root / "cal").mkdir()
    (root / "cal" / "calibration.json").write_text(NESTED_JSON)
    result = _cli("scan", str(src), "--out", str(root / "out"), "--quiet", "--calibration", str(root / "cal"))
    return result.exit_code == 2, f"exit {result.exit_code}"


@around("side file: advise --from-scan of a summary nested 100,000 deep, and of a FIFO")
def _nested_from_scan(root: Path) -> tuple[bool, str]:
    from loops.errors import ConfigError
    from loops.from_scan import read_scan

    (root / "nested.json").write_text(NESTED_JSON)
    os.mkfifo(root / "fifo.json")
    outcomes = []
    for name in ("nested.json", "fifo.json"):
        try:
            read_scan(root / name)
            outcomes.append("accepted")
        except ConfigError:
            outcomes.append("refused (exit 2)")
    return outcomes == ["refused (exit 2)"] * 2, ", ".join(outcomes)


def _cache_case(root: Path, spoil) -> tuple[bool, str]:
    """A shared embedding cache spoiled between two scans: held when the second scan finishes with every
    image and a note that the cache was set aside or entries refused."""
    import sqlite3  # noqa: F401 - the spoilers use it

    src, shared, config = _twelve(root), root / "shared", ScanConfig(detectors=(), embedder="random", embed=True)
    scan(str(src), root / "first", workers=0, config=config, embedding_cache=shared)
    spoil(next(shared.rglob("vectors.sqlite")))
    try:
        result = scan(str(src), root / "again", workers=0, config=config, embedding_cache=shared)
    except Exception as e:  # noqa: BLE001 - the scan was lost
        return False, f"scan lost: {type(e).__name__}: {e}"
    noted = any("cache" in note or "cached" in note for note in result.summary["notes"])
    ok = result.summary["counts"]["ok"]
    return ok == RESUME_IMAGES and noted, f"{ok} of {RESUME_IMAGES} images, {'noted' if noted else 'no note'}"


def _sql(statements: list[str]):
    def spoil(path: Path) -> None:
        import sqlite3

        with sqlite3.connect(path) as db:
            for statement in statements:
                db.execute(statement)

    return spoil


def _replace_db(build):
    def spoil(path: Path) -> None:
        path.unlink()
        build(path)

    return spoil


HOSTILE_CACHES = {
    "cache: random bytes": lambda p: p.write_bytes(os.urandom(4096)),
    "cache: an SQLite header, then garbage": lambda p: p.write_bytes(b"SQLite format 3\0" + os.urandom(5000)),
    "cache: cut in half": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "cache: another table": _replace_db(lambda p: _sql(["CREATE TABLE other (x)"])(p)),
    "cache: an earlier version's table (no checksums)": _replace_db(
        lambda p: _sql(["CREATE TABLE vectors (sha256 TEXT PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"])(p)
    ),
    "cache: a trigger that empties the table": _sql(
        ["CREATE TRIGGER t AFTER INSERT ON vectors BEGIN DELETE FROM vectors; END"]
    ),
    "cache: a folder in its place": _replace_db(lambda p: p.mkdir()),
    "cache: a FIFO in its place": _replace_db(lambda p: os.mkfifo(p)),
    "cache: a link to a file outside": _replace_db(lambda p: os.symlink(p.parents[3] / "src" / "00.png", p)),
    "cache: poisoned vectors (checksums not matching)": _sql(["UPDATE vectors SET vector = zeroblob(length(vector))"]),
    "cache: NaN vectors of the wrong length": _sql(["UPDATE vectors SET vector = x'0000c07f'"]),
}
for _kind, _spoil in HOSTILE_CACHES.items():
    around(_kind)(lambda root, spoil=_spoil: _cache_case(root, spoil))


@around("cache: --overwrite keeps the replaced scan's cache")
def _overwrite_cache(root: Path) -> tuple[bool, str]:
    src = _twelve(root)
    scan(str(src), root / "out", workers=0, config=ScanConfig(detectors=("metadata",)))
    (root / "out" / "embeddings" / "x").mkdir(parents=True)
    (root / "out" / "embeddings" / "x" / "vectors.sqlite").write_bytes(b"planted")
    code = _cli(
        "scan", str(src), "--out", str(root / "out"), "--overwrite", "--quiet", "--detectors", "metadata"
    ).exit_code
    kept = (root / "out" / "embeddings").exists()
    return code == 0 and not kept, f"exit {code}, cache {'kept' if kept else 'cleared'}"


def around_table(tmp: Path) -> tuple[Table, int]:
    """Each AROUND kind in a fresh folder: (the table, how many did not hold)."""
    table = Table(
        title=f"around the scan: {len(AROUND)} kinds (outputs, export, saved datasets, printed text, resume, side files, cache)"
    )
    for column in ("kind", "held", "what happened"):
        table.add_column(column, overflow="fold")
    broken = 0
    for i, (kind, check) in enumerate(AROUND.items()):
        folder = tmp / f"around-{i:03d}"
        folder.mkdir()
        try:
            held, detail = check(folder)
        except Exception as e:  # noqa: BLE001 - a check that crashes did not hold
            held, detail = False, f"{type(e).__name__}: {e}"
        broken += not held
        table.add_row(kind, "yes" if held else "NO", detail.encode("unicode_escape").decode("ascii"))
    return table, broken


# --- memory under the pixel limit, parquet bombs, signals ------------------------------------------


def _scan_peak(args: list[str]) -> tuple[int, float]:
    """(exit status, peak RSS in MB) of `audit scan ARGS --workers 0` in a fresh process. The peak is its
    own VmHWM, read until it exits (a child's rusage would count this process's memory at the fork)."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "audit.cli", "scan", *args, "--quiet", "--workers", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as f:
                peak = max([peak] + [int(line.split()[1]) for line in f if line.startswith("VmHWM:")])
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return process.returncode, peak / 1024


@around("memory: 8 images of 24 MP in one batch (--pixel-limit 25 MP)")
def _pixel_budget(root: Path) -> tuple[bool, str]:
    pixels = np.zeros((4000, 6000, 3), np.uint8)
    pixels[:, :, 0] = (np.arange(6000) % 256)[None, :]
    data = encoded(Image.fromarray(pixels), "PNG", compress_level=1)
    (root / "src").mkdir()
    for i in range(8):
        (root / "src" / f"{i}.png").write_bytes(data)
    code, peak = _scan_peak(
        [str(root / "src"), "--out", str(root / "out"), "--detectors", "metadata", "--pixel-limit", "25000000"]
    )
    ok = (
        code == 0
        and pq.read_table(root / "out" / "results.parquet", columns=["status"]).column("status").to_pylist()
        == ["ok"] * 8
    )
    return ok and peak < 600, f"exit {code}, peak RSS {peak:.0f} MB (the 8 images decoded: {8 * 72} MB)"


@around("parquet: a zstd row group of 5 cells of 60 MB zeros (a decompression bomb)")
def _parquet_bomb(root: Path) -> tuple[bool, str]:
    (root / "src").mkdir()
    cells = [encoded(noise(), "PNG")] + [bytes(60 * 2**20)] * 5
    with pq.ParquetWriter(
        root / "src" / "t.parquet", pa.schema([("image", pa.binary())]), compression="zstd", use_dictionary=False
    ) as writer:
        for group in (cells[:1], cells[1:], cells[:1]):
            writer.write_table(pa.table({"image": group}))
    del cells
    size = (root / "src" / "t.parquet").stat().st_size
    code, peak = _scan_peak([str(root / "src" / "t.parquet"), "--out", str(root / "out")])
    rows = (
        pq.read_table(root / "out" / "results.parquet", columns=["id", "error"]).to_pylist() if code in (0, 1) else []
    )
    bomb = [r for r in rows if (r["error"] or "").startswith("decompression bomb: parquet row group 1")]
    return len(bomb) == 1 and len(rows) == 3 and peak < 400, (
        f"exit {code}, {len(rows)} rows ({len(bomb)} naming the row group), file {size // 1024} KB, peak RSS {peak:.0f} MB"
    )


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def _signal_check(signum):
    def check(root: Path) -> tuple[bool, str]:
        import subprocess
        import sys

        (root / "src").mkdir()
        data = encoded(noise(384, 384), "PNG")
        for i in range(400):
            (root / "src" / f"{i:04d}.png").write_bytes(data)
        scan_ = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "audit.cli",
                "scan",
                str(root / "src"),
                "--out",
                str(root / "out"),
                "--workers",
                "2",
                "--batch-size",
                "4",
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        journal, deadline = root / "out" / "results.journal.jsonl", time.monotonic() + 60
        while (
            scan_.poll() is None
            and time.monotonic() < deadline
            and (not journal.exists() or journal.read_bytes().count(b"\n") < 9)
        ):
            time.sleep(0.05)
        sent = time.monotonic()
        os.kill(scan_.pid, signum)
        while _group_alive(scan_.pid) and time.monotonic() - sent < 10:
            time.sleep(0.05)
        gone, left = time.monotonic() - sent, _group_alive(scan_.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        scan_.stdout.read()
        message = scan_.stderr.read().decode()
        code = scan_.wait(timeout=10)
        resumed = subprocess.run(
            [
                sys.executable,
                "-m",
                "audit.cli",
                "scan",
                str(root / "src"),
                "--out",
                str(root / "out"),
                "--workers",
                "2",
                "--resume",
                "--quiet",
            ],
            capture_output=True,
        ).returncode
        rows = pq.read_metadata(root / "out" / "results.parquet").num_rows if resumed == 0 else 0
        held = not left and gone < 5 and code == 128 + signum and "--resume" in message and rows == 400
        return held, (
            f"process group gone {gone:.1f} s after the signal ({len(left)} left), exit {code}, "
            f"resume exit {resumed} with {rows} of 400 rows"
        )

    return check


for _signum in (signal.SIGTERM, signal.SIGHUP):
    around(f"signals: {_signum.name} to a running scan with 2 workers")(_signal_check(_signum))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        sources = build(Path(tmp))
        table = Table(title=f"hostile corpus: {len(FILES)} file kinds + links, FIFO, tar and parquet hostilities")
        for column in ("source", "item", "status", "reason"):
            table.add_column(column, overflow="fold")
        started, rows = time.perf_counter(), 0
        for spec, what in sources.items():
            for r in scan(spec, Path(tmp) / f"out-{what}", config=source_config(spec), workers=args.workers).rows:
                table.add_row(what, kind_of(r["id"], what), r["status"], r["error"] or "")
                rows += 1
        wall = time.perf_counter() - started
        console.print(table)
        seconds, item = slowest_alone(sources)
        around, broken = around_table(Path(tmp))
        console.print(around)
        console.print(f"around the scan: {len(AROUND) - broken} of {len(AROUND)} kinds held")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    console.print(
        f"{rows} rows from 3 scans in {wall:.1f} s with {args.workers} workers; "
        f"slowest item alone: {seconds:.2f} s ({item}); "
        f"peak RSS: this process {own:.0f} MB, largest worker {workers:.0f} MB"
    )


if __name__ == "__main__":
    main()
