"""The tree keeps its architecture: no import cycle between the project's modules, the auditing
side never imports the simulation side (`loops` builds on `audit`, not the reverse), and inside
`audit` no module imports from a higher layer than its own (the layers docs/architecture.md lists).

Imports are read from the source (every `import`/`from` statement, also those inside functions),
so a lazy import counts like any other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("audit", "loops")
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement in this file mentions (absolute or relative)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Call) and _call_name(node) in ("import_module", "__import__") and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)  # importlib.import_module("pkg.module")
    return names


def _call_name(node: ast.Call) -> str:
    return getattr(node.func, "attr", getattr(node.func, "id", ""))


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a `from pkg import name` of a non-module means pkg)."""
    modules = project_modules()
    return {
        module: {name for name in imported_names(path, module) if name in modules and name != module}
        for module, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_no_import_cycles_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_audit_never_imports_loops():
    wrong = sorted(
        f"{module} imports {name}"
        for module, path in project_modules().items()
        if module.split(".")[0] == "audit"
        for name in imported_names(path, module)
        if name.split(".")[0] == "loops"
    )
    assert not wrong, "; ".join(wrong)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_every_module_says_what_it_is():
    missing = [
        name
        for name, path in project_modules().items()
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not missing, "modules without a docstring: " + ", ".join(missing)


def documented_layers() -> list[list[str]]:
    """The layers of `audit`, bottom up, as docs/architecture.md numbers them under "### Layers":
    `N. title: name, name` or `N. name`."""
    text = ARCHITECTURE.read_text(encoding="utf-8").split("### Layers", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in re.findall(r"^\d+\. (.+)$", text, re.M):
        names = line.split(":", 1)[1] if ":" in line else line
        layers.append([name.strip() for name in names.split(",")])
    return layers


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The index of the layer that names `module`'s unit (`audit` itself, or audit.NAME and all below it)."""
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else "audit"
    return next((i for i, names in enumerate(layers) if unit in names), None)


def upward_imports(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Each import of `audit` from a lower layer into a higher one, as text."""
    wrong = []
    for module, deps in sorted(graph.items()):
        here = layer_of(module, layers) if module.split(".")[0] == "audit" else None
        for dep in sorted(deps):
            there = layer_of(dep, layers) if dep.split(".")[0] == "audit" else None
            if here is not None and there is not None and there > here:
                wrong.append(f"{module} (layer {here + 1}) imports {dep} (layer {there + 1})")
    return wrong


def test_docs_name_the_layers_and_every_audit_module_has_one():
    layers = documented_layers()
    assert len(layers) >= 5 and ["sources"] in layers, layers
    names = [name for layer in layers for name in layer]
    assert len(names) == len(set(names)), "a name in two layers"
    unplaced = sorted(m for m in project_modules() if m.split(".")[0] == "audit" and layer_of(m, layers) is None)
    assert not unplaced, "modules no layer of docs/architecture.md names: " + ", ".join(unplaced)


def test_no_import_from_a_lower_layer_into_a_higher_one():
    wrong = upward_imports(import_graph(), documented_layers())
    assert not wrong, "; ".join(wrong)


def test_the_layer_check_finds_upward_imports():
    layers = [["sources"], ["detectors", "bank"], ["engine"], ["bank_add"]]
    graph = {
        "audit.bank.builder": {"audit.engine.local", "audit.sources.record"},
        "audit.bank_add": {"audit.engine"},
        "audit.detectors.x": {"audit.bank.index"},
    }
    assert upward_imports(graph, layers) == ["audit.bank.builder (layer 2) imports audit.engine.local (layer 3)"]
