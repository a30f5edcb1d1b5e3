"""The package's import structure: no module imports itself back, however lazily.

A cycle hidden in a function-level import (``def f(): from rollcraft.x import y``) still ties
the two modules together (and fails at import time as soon as someone hoists the import), so
every import statement counts, wherever it is, except those under ``if TYPE_CHECKING:`` (which
never run). Only rollcraft's own modules are in the graph: function-level imports of optional
dependencies (torch, ray, ...) are not edges. ``rollcraft.__all__`` is pinned by
``tests/test_api.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rollcraft

SOURCE = Path(rollcraft.__file__).parent


def _modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module under ``package``."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at module level, in functions, in classes; not the
    ones under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _owner(name: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    """The known module ``name`` is or lies in (``a.b.NAME`` -> ``a.b``), or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (any import that can run)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        targets: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    here = module.split(".") if is_package else module.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join([*here, base] if base else here)
                names = [f"{base}.{alias.name}" for alias in node.names]
            targets.update(t for t in (_owner(n, modules) for n in names) if t is not None)
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _edges_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & set(component))]


def test_rollcraft_has_no_import_cycles() -> None:
    graph = import_graph(SOURCE)
    assert "rollcraft.pipeline" in graph and "rollcraft.engines.local" in graph
    found = cycles(graph)
    assert not found, [_edges_within(graph, c) for c in found]


def test_the_engines_do_not_import_the_pipeline() -> None:
    graph = import_graph(SOURCE)
    engines = [m for m in graph if m.startswith("rollcraft.engines")]
    assert len(engines) >= 4
    assert all("rollcraft.pipeline" not in graph[m] for m in engines)


def test_the_ray_engine_uses_only_public_names_of_the_local_engine() -> None:
    tree = ast.parse((SOURCE / "engines" / "ray.py").read_text(encoding="utf-8"))
    taken = [
        alias.name
        for node in _runtime_imports(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "rollcraft.engines.local"
        for alias in node.names
    ]
    assert taken and not [name for name in taken if name.startswith("_")]


def test_an_engine_is_picked_by_name() -> None:
    from rollcraft.engines import select_engine
    from rollcraft.engines.local import execute

    assert select_engine("local") is execute
    assert callable(select_engine("ray"))  # imports the engine's module, not ray itself


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n"
    (package / "__init__.py").write_text(guarded)
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n    import torch\n")
    (package / "c.py").write_text("import pkg\n")  # the package itself; its TYPE_CHECKING import never runs
    graph = import_graph(package)
    assert graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg"] == set()
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
