"""The code's shape, checked on the source: imports point one way, no cycles, no private APIs
of Optuna or Ray, no file over 400 lines."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "blocknas"
#: subpackage → what it must never import (contracts of the architecture, DEVELOPERS.md)
FORBIDDEN = {
    "spaces": ("blocknas.costmodel", "blocknas.runners", "blocknas.search", "optuna", "ray"),
    "costmodel": ("blocknas.runners", "blocknas.search", "optuna", "ray"),
    "runners": ("blocknas.search", "optuna"),
    "dashboards": ("ray",),
    "exporter": ("ray", "blocknas.dashboards", "blocknas.cli"),
    "metrics": ("blocknas.", "torch", "optuna", "ray"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports at run time (at module level or inside functions), with
    ``from a import b`` resolved to ``a.b`` when b is a module; ``TYPE_CHECKING`` blocks skipped."""
    tree = ast.parse(path.read_text())
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in MODULES else base
        todo.extend(ast.iter_child_nodes(node))


def graph() -> dict[str, set[str]]:
    return {
        name: {m for m in imports(path) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    edges = graph()
    assert edges["blocknas.runners.datasets"] >= {"blocknas.runners.data"}  # the parser works
    assert cycles(edges) == []


@pytest.mark.parametrize("sub", sorted(FORBIDDEN))
def test_dependencies_point_one_way(sub: str) -> None:
    paths = [p for name, p in MODULES.items() if name.split(".")[1:2] == [sub]]
    assert paths, sub
    for path in paths:
        for imported in imports(path):
            bad = [f for f in FORBIDDEN[sub] if imported == f.rstrip(".") or imported.startswith(f)]
            assert not bad, f"{path.relative_to(ROOT)} imports {imported}"


def test_no_private_optuna_or_ray_attributes() -> None:
    private = re.compile(r"\._(storage|trial_id|study_id|cached_frozen_trial)\b|\bray\._private")
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in PACKAGE.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert hits == []


def test_no_file_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for folder in ("src", "tests", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}
