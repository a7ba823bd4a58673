"""Every file the tool writes is created exclusively under an unpredictable temporary name in the
target's folder, then renamed into place: a link planted at any name the tool might use is never
written through, and no writer in the tree goes round that helper."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit import scan
from audit.atomic import write_atomically
from audit.cli import main
from tests.conftest import image_bytes, noise_image, write_tar

ROOT = Path(__file__).resolve().parents[1]


def _plant_links(folder: Path, stem: str, suffix: str, victim: Path) -> None:
    """Links to `victim` at every temporary name the old helper would use for the next process ids."""
    for pid in range(os.getpid() - 50, os.getpid() + 200):
        os.symlink(victim, folder / f".{stem}.tmp-{pid}{suffix}")


def test_a_link_at_the_old_temporary_name_is_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("unrelated\n")
    out = tmp_path / "out"
    out.mkdir()
    _plant_links(out, "list", ".txt", victim)
    write_atomically(out / "list.txt", lambda p: p.write_text("new\n"))
    assert victim.read_text() == "unrelated\n"
    assert (out / "list.txt").read_text() == "new\n"


def test_the_target_itself_being_a_link_replaces_the_link_not_its_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("unrelated\n")
    os.symlink(victim, tmp_path / "list.txt")
    write_atomically(tmp_path / "list.txt", lambda p: p.write_text("new\n"))
    assert victim.read_text() == "unrelated\n"
    assert not (tmp_path / "list.txt").is_symlink() and (tmp_path / "list.txt").read_text() == "new\n"


def test_no_temporary_file_is_left_behind_after_a_failed_write(tmp_path):
    def fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(tmp_path / "x.json", fail)
    assert list(tmp_path.iterdir()) == []


def test_written_files_have_the_usual_permissions(tmp_path):
    write_atomically(tmp_path / "x.txt", lambda p: p.write_text("x"))
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.fixture
def tiny_shard_scan(tmp_path):
    write_tar(tmp_path / "s.tar", [(f"{i:03d}.png", image_bytes(noise_image(seed=i))) for i in range(3)])
    scan(str(tmp_path / "s.tar"), tmp_path / "out", workers=0)
    return tmp_path


def test_export_never_writes_through_links_at_its_targets(tiny_shard_scan):
    base = tiny_shard_scan
    victim = base / "victim.txt"
    victim.write_text("unrelated\n")
    clean = base / "clean"
    clean.mkdir()
    _plant_links(clean, "s", ".tar", victim)
    _plant_links(base, "keep", ".txt", victim)
    os.symlink(victim, clean / "s.tar")
    os.symlink(victim, base / "keep.txt")
    result = CliRunner().invoke(
        main, ["export", str(base / "out"), "--keep", "--to", str(base / "keep.txt"), "--write-shards", str(clean)]
    )
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "unrelated\n"
    assert not (clean / "s.tar").is_symlink() and not (base / "keep.txt").is_symlink()


def test_scan_outputs_never_write_through_links(tmp_path):
    write_tar(tmp_path / "s.tar", [("000.png", image_bytes(noise_image(seed=1)))])
    victim = tmp_path / "victim.txt"
    victim.write_text("unrelated\n")
    out = tmp_path / "out"
    out.mkdir()
    for stem, suffix in (("summary", ".json"), ("report", ".md"), ("report", ".html"), ("results", ".parquet")):
        _plant_links(out, stem, suffix, victim)
    scan(str(tmp_path / "s.tar"), out, workers=0)
    assert victim.read_text() == "unrelated\n"
    assert (out / "summary.json").is_file()


# Calls that write a file by name. `save` is Pillow's, torch's and numpy's; our own objects' `save`
# methods (a bank, a probe, a checkpoint) write through write_atomically inside and are listed below.
WRITERS = {
    "write_text",
    "write_bytes",
    "write_table",
    "ParquetWriter",
    "savez",
    "save_file",
    "write_index",
    "write_index_binary",
    "to_parquet",
    "save",
}
WRITE_MODES = ("w", "a", "x", "+")
OWN_SAVERS = {"bank", "probe", "checkpoint", "convert_univfd"}  # their save() goes through write_atomically
# Functions that write in place, and why that is safe.
IN_PLACE = {
    ("audit/report/github.py", "append_github_summary"): "appends to the step summary file CI names, as CI asks",
}


def _writes(tree: ast.AST):
    """(call, enclosing function or None) of every call that writes a file by name."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    in_memory = _in_memory(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_write(node, in_memory):
            func = parents.get(node)
            while func is not None and not isinstance(func, (ast.FunctionDef, ast.Lambda, ast.AsyncFunctionDef)):
                func = parents.get(func)
            yield node, func


def _is_write(call: ast.Call, in_memory: set[str]) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "open":
        modes = [a for a in call.args[1:2]] + [k.value for k in call.keywords if k.arg == "mode"]
        return any(
            isinstance(m, ast.Constant) and isinstance(m.value, str) and any(c in m.value for c in WRITE_MODES)
            for m in modes
        )
    if name == "save":
        receiver = func.value if isinstance(func, ast.Attribute) else None
        own = getattr(receiver, "id", None) or getattr(getattr(receiver, "func", None), "id", None)
        return (
            bool(call.args) and own not in OWN_SAVERS and not any(getattr(a, "id", "") in in_memory for a in call.args)
        )
    return name in WRITERS


def _in_memory(tree: ast.AST) -> set[str]:
    """Names bound to an io.BytesIO: writing to them writes no file."""
    return {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "attr", getattr(node.value.func, "id", None)) == "BytesIO"
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def _callbacks(tree: ast.AST) -> set:
    """Lambdas and names of functions that fill write_atomically's temporary file: those passed to
    it, and the functions such a lambda calls with it."""
    found: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "write_atomically":
            for arg in node.args[1:]:
                found.add(arg if isinstance(arg, ast.Lambda) else getattr(arg, "id", getattr(arg, "attr", None)))
                if isinstance(arg, ast.Lambda):
                    found |= {getattr(c.func, "id", None) for c in ast.walk(arg.body) if isinstance(c, ast.Call)}
    return found


def test_every_writer_in_the_tree_goes_through_write_atomically():
    offenders = []
    for path in sorted([*ROOT.glob("audit/**/*.py"), *ROOT.glob("loops/**/*.py")]):
        rel = str(path.relative_to(ROOT))
        if rel == "audit/atomic.py":
            continue
        tree = ast.parse(path.read_text())
        callbacks = _callbacks(tree)
        for call, func in _writes(tree):
            name = getattr(func, "name", None)
            if func in callbacks or name in callbacks or (rel, name) in IN_PLACE:
                continue
            offenders.append(f"{rel}:{call.lineno}")
    assert offenders == [], "files written without write_atomically: " + ", ".join(offenders)
