"""The package's shape: one subpackage per stage, no import circles, no hidden imports, shared
leaves that import nothing of the stages, and scripts that import the installed package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = {"io", "prepare", "de", "enrich", "claims", "qc", "plots", "report"}
LEAVES = {"prepost.vocabulary", "prepost.stats", "prepost.files", "prepost.logs", "prepost.paths",
          "prepost.provenance", "prepost.distributions", "prepost.parallel"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "prepost").rglob("*.py"))}


def prepost_imports(path: Path) -> dict[str, list[tuple[str, int]]]:
    """prepost modules imported by a file -> [(how, line)], how = "top" or "nested"."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found: dict[str, list[tuple[str, int]]] = {}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] == "prepost" and name in MODULES:
                found.setdefault(name, []).append(("top" if id(node) in top else "nested", node.lineno))
    return found


GRAPH = {m: set(prepost_imports(p)) - {m} for m, p in MODULES.items()}


def test_the_tree_has_one_subpackage_per_stage():
    subpackages = {m.split(".")[1] for m in MODULES if m.count(".") >= 1 and MODULES[m].name == "__init__.py"}
    assert STAGES <= subpackages, sorted(STAGES - subpackages)
    flat = {m for m in MODULES if m.count(".") == 1 and MODULES[m].name != "__init__.py"}
    flat -= {"prepost.__main__"}  # `python -m prepost`: the command line (prepost.cli)
    assert flat == LEAVES, f"top-level modules other than the shared leaves: {sorted(flat - LEAVES)}"


def test_no_import_circles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for dep in sorted(GRAPH[m]):
            if dep.startswith(m + ".") or m.startswith(dep + "."):  # a package and its own parts
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_no_hidden_imports_of_the_package():
    """Imports of prepost modules sit at the top of the file (a function-level import once hid
    the circle claims -> meta -> claims)."""
    nested = [
        f"{m}:{line} imports {dep}"
        for m, p in MODULES.items()
        for dep, uses in prepost_imports(p).items()
        for how, line in uses
        if how == "nested"
    ]
    assert not nested, nested


def test_shared_leaves_import_no_stage():
    for leaf in LEAVES:
        assert GRAPH[leaf] <= LEAVES | {"prepost"}, f"{leaf} imports {sorted(GRAPH[leaf] - LEAVES)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    assert importlib.import_module(name).__name__ == name


def test_scripts_do_not_edit_sys_path():
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        text = script.read_text()
        assert "sys.path" not in text, f"{script.name} edits sys.path; the package is installed"
    assert "sys.path" not in (ROOT / "workflow/rules/common.smk").read_text()
