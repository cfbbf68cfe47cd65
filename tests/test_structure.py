"""The package's shape (``docs/architecture.md``): layers that only point down, small modules,
no private names shared between modules.

The import graph is read from the source with :mod:`ast` (function-level imports included, so a
cycle cannot hide inside a function): an edge A -> B for every ``import B`` / ``from B import x``
in A, where ``from P import m`` with ``m`` a submodule of P counts as an edge to ``P.m``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "freeness_lab"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(module: str, level: int, importer: str) -> str:
    if level == 0:
        return module
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement of module ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", node.level, name)
            found.append((target, [alias.name for alias in node.names]))
    return found


def _edges(name: str) -> set[str]:
    out = set()
    for target, names in imports_of(name):
        subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        out.update(subs)
        if target in MODULES and (len(subs) < len(names) or not names):
            out.add(target)
    out.discard(name)
    return out


GRAPH = {name: _edges(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("route, other", [("freeness_lab.theory", "freeness_lab.simulate"),
                                          ("freeness_lab.simulate", "freeness_lab.theory"),
                                          ("freeness_lab.theory", "freeness_lab.harness"),
                                          ("freeness_lab.simulate", "freeness_lab.harness")])
def test_layers_point_down(route, other):
    """Theory and simulation are independent routes to the same numbers; neither knows the
    harness."""
    bad = {(a, b) for a, targets in GRAPH.items() if a.startswith(route)
           for b in targets if b == other or b.startswith(other + ".")}
    assert not bad


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


def _private_uses(path: Path) -> list[str]:
    """Private names (one leading underscore) of freeness_lab modules used outside them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path) if path.is_relative_to(PACKAGE) else ""
    aliases: set[str] = set()
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", node.level, here) if here else node.module or ""
            if not target.startswith("freeness_lab"):
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    bad.append(f"from {target} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("freeness_lab") and alias.asname:
                    aliases.add(alias.asname)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            bad.append(f"{node.value.id}.{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setattr" and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name) and node.args[0].id in aliases
                and isinstance(node.args[1], ast.Constant)
                and str(node.args[1].value).startswith("_")):
            bad.append(f"setattr({node.args[0].id}, {node.args[1].value!r})")
    return bad


SOURCES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                  *(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "experiments").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_module(path):
    assert _private_uses(path) == []


def test_private_name_finder_sees_the_three_forms(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from freeness_lab.harness import storage\n"
                      "from freeness_lab.theory.series import _hidden\n"
                      "storage._publish(1)\n"
                      "monkeypatch.setattr(storage, '_write_manifest', None)\n")
    assert sorted(_private_uses(sample)) == ["from freeness_lab.theory.series import _hidden",
                                             "setattr(storage, '_write_manifest')",
                                             "storage._publish"]


def test_every_package_ships_in_the_wheel():
    """setuptools installs only the packages pyproject.toml lists (``conf/`` is mapped onto
    ``freeness_lab.conf``, so ``find`` cannot be used): a new subpackage must be listed."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    packages = {name for name in MODULES if _is_package(name)}
    assert packages <= listed, sorted(packages - listed)
