"""The code's structure: the layers of pyproject.toml hold, and no module imports itself back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import ROOT, venv_script


def import_cycles(package: str) -> list[list[str]]:
    """Every set of modules of `package` that import one another in a circle.

    A package's `__init__` importing its own submodules (to re-export them) is not counted: that
    is how a package names its interface, and Python resolves it in one direction.
    """
    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    edges = {
        module: {i for i in graph.find_modules_directly_imported_by(module) if not i.startswith(module + ".")}
        for module in graph.modules
    }
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in edges[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(edges):
        if module not in order:
            visit(module)
    return cycles


def test_no_module_of_pipelines_imports_itself_back() -> None:
    assert import_cycles("pipelines") == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "circle"
    package.mkdir()
    (package / "__init__.py").write_text("from circle import a\n")
    (package / "a.py").write_text("from circle import b\n")
    (package / "b.py").write_text("import circle.c\n")
    (package / "c.py").write_text("from circle.a import __name__ as _\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("circle") == [["circle.a", "circle.b", "circle.c"]]


def test_the_layers_in_pyproject_hold() -> None:
    done = subprocess.run(
        [str(venv_script("lint-imports"))], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_no_module_of_pipelines_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "pipelines").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > 300
    }
    assert long == {}, "split these by what they do"
