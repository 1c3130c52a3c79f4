"""Meta-tests (as datasette does): every hook is tested and documented."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from csuhub import hookspecs

ROOT = Path(__file__).resolve().parent.parent


def _hookspecs() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(func)
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, f"{hookspecs.PROJECT}_spec")
    }


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


def test_there_are_hooks() -> None:
    assert len(_hookspecs()) >= 13


def test_every_hook_has_a_test() -> None:
    missing = sorted(n for n in _hookspecs() if f"test_hook_{n}" not in _test_names())
    assert not missing, f"hooks without test_hook_<name>: {missing}"


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    doc = (ROOT / "docs" / "hooks.md").read_text()
    problems = []
    for name, signature in _hookspecs().items():
        if not re.search(rf"^### {name}$", doc, re.M):
            problems.append(f"{name}: no '### {name}' heading")
        line = f"def {name}{signature}".replace("'", "")
        if line not in doc:
            problems.append(f"{name}: signature line missing or stale: {line}")
    documented = set(re.findall(r"^### (\w+)$", doc, re.M))
    stale = documented - set(_hookspecs())
    assert not problems, problems
    assert not stale, f"documented hooks that do not exist: {sorted(stale)}"


def test_core_never_imports_a_bundled_plugin() -> None:
    bundled = {p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("csuhub_")}
    offenders = []
    for path in (ROOT / "csuhub").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            offenders += [f"{path.relative_to(ROOT)} imports {n}" for n in names if n in bundled]
    assert not offenders, offenders


def test_bundled_plugins_register_through_entry_points() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    eps = project["project"]["entry-points"]["csuhub"]
    bundled = {
        p.name
        for p in (ROOT / "plugins").iterdir()
        if p.name.startswith("csuhub_") and (p / "__init__.py").exists()
    }
    assert set(eps.values()) == bundled
