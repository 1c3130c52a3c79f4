"""The architecture's plain checks (issue 11): no import cycle, small modules, a small Hub.

The import graph is built from the source, not from ``sys.modules``: an import
inside a function is an edge too (a lazy import that dodges a cycle at start-up
still couples the modules both ways), while an import under ``TYPE_CHECKING`` is
not (it never runs). Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``
first, so those packages are edges as well, except a module's own ancestors.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

CSUHUB = Path(__file__).resolve().parent.parent / "csuhub"
MAX_LINES = 450
HUB_MAX_LINES = 250


def _modules(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(tree: ast.Module, package: str) -> Iterator[str]:
    """Every module name imported at run time, with relative imports made absolute."""

    def walk(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    yield from walk_one(other)
                continue
            yield from walk_one(child)

    def walk_one(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        else:
            yield from walk(node)

    yield from walk(tree)


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = _modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for imported in _imports(ast.parse(path.read_text()), package):
            target = resolve(imported)
            if target is None:
                continue
            deps.add(target)
            parts = target.split(".")
            for k in range(1, len(parts)):
                ancestor = ".".join(parts[:k])
                if ancestor in modules and not f"{name}.".startswith(f"{ancestor}."):
                    deps.add(ancestor)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_checker_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from .. import a\n"
    )
    (pkg / "c.py").write_text("from pkg import a\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b"]]
    # the TYPE_CHECKING import alone is not a cycle
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    assert cycles(import_graph(pkg)) == []


def test_csuhub_has_no_import_cycle() -> None:
    assert cycles(import_graph(CSUHUB)) == []


def _reason_for_length(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return "longer than" in doc.lower() and "lines" in doc.lower()


def test_no_module_over_450_lines_without_a_reason() -> None:
    """A module over the limit says why in its docstring ("... longer than 450 lines
    because ...")."""
    long = {
        str(path.relative_to(CSUHUB.parent)): n
        for path in CSUHUB.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES and not _reason_for_length(path)
    }
    assert long == {}


def test_the_hub_is_small() -> None:
    assert len((CSUHUB / "hub.py").read_text().splitlines()) < HUB_MAX_LINES
