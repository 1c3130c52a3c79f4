"""Meta-tests (as datasette does): every hook is tested and documented."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

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


def _schema_keys(schema: object, prefix: str = "") -> set[str]:
    import voluptuous as vol

    keys: set[str] = set()
    node = schema
    for _ in range(5):
        if isinstance(node, vol.Schema):
            node = node.schema
        elif isinstance(node, vol.All):
            inner = [
                v
                for v in node.validators
                if isinstance(v, dict | vol.Schema) or hasattr(v, "__csuhub_each__")
            ]
            node = inner[0] if inner else None
        elif hasattr(node, "__csuhub_each__"):
            node = node.__csuhub_each__
        else:
            break
    if isinstance(node, dict):
        for key, value in node.items():
            name = str(getattr(key, "schema", key))
            keys.add(name)
            keys |= _schema_keys(value, f"{prefix}{name}.")
    return keys


def test_every_site_key_is_documented() -> None:
    from csuhub.config.schema import CORE_SCHEMAS

    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = []
    for section, (schema, _) in CORE_SCHEMAS.items():
        assert f"## `{section}`" in doc, f"section {section} undocumented"
        missing += [
            f"{section}: {k}"
            for k in sorted(_schema_keys(schema))
            if f"`{k}" not in doc and f".{k}`" not in doc
        ]
    assert not missing, missing


def test_every_selector_and_domain_is_documented() -> None:
    from csuhub.blueprint.models import DOMAINS
    from csuhub.blueprint.selectors import SELECTOR_TYPES

    doc = (ROOT / "docs" / "blueprints.md").read_text()
    assert not [s for s in SELECTOR_TYPES if f"| `{s}` |" not in doc]
    assert not [d for d in DOMAINS if f"| `{d}` |" not in doc]


def test_packages_are_all_listed_in_pyproject() -> None:
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "csuhub").rglob("__init__.py")
    }
    found |= {p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py")}
    assert found <= listed, found - listed


def _declared_requirements() -> list[tuple[str, Any]]:
    """(group, Requirement) for the runtime dependencies and the ``test`` extra."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"]}
    groups |= {f"[{k}]": v for k, v in project.get("optional-dependencies", {}).items()}
    return [(group, Requirement(line)) for group, lines in groups.items() for line in lines]


def test_every_dependency_has_an_upper_bound() -> None:
    """A major release may change an API we call (zeroconf's interface choice did break
    discovery): it is tested before a bound moves, never picked up by a fresh install."""
    unbounded = [
        f"{group}: {req}"
        for group, req in _declared_requirements()
        if not any(spec.operator in ("<", "<=", "==", "~=", "===") for spec in req.specifier)
    ]
    assert not unbounded, unbounded


def test_the_installed_set_satisfies_the_declared_ranges() -> None:
    """What this environment resolved (the versions every other test ran against) is
    inside pyproject's ranges, so the ranges claim only what was tested."""
    from importlib import metadata

    problems = []
    for group, req in _declared_requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": "test"}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{group}: {req.name} is not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{group}: {req.name} {version} is outside {req.specifier}")
    assert not problems, problems


# --- the architecture of record names only what exists --------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"
_CODE = re.compile(r"`([^`\n]+)`")
_PATHLIKE = re.compile(r"^[A-Za-z0-9_.\-/]+$")
_HOOK_NEAR = re.compile(r"`(\w+)`\s+hooks?\b|\bhooks?\s+`(\w+)`")
_HOOK_FAMILY = re.compile(r"^(register_\w+|hub_\w+|\w+_for_\w+)$")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _doc_paths(text: str) -> set[str]:
    """Backticked file and folder paths: ``csuhub/hub.py``, ``recording/export.py``,
    ``store/``, ``plugins/csuhub_x/``, ``csuhub_x``."""
    found = set()
    for token in _CODE.findall(text):
        if not _PATHLIKE.match(token) or token.startswith("."):
            continue
        if token.endswith((".py", ".md", "/")) or re.match(r"^csuhub_\w+$", token):
            found.add(token)
    return found


def _path_exists(token: str) -> bool:
    """Paths in the doc are written from the top of the checkout, from ``csuhub/``
    (``bus.py``, ``recording/export.py``) or from ``plugins/`` (``csuhub_onvif``)."""
    return any(
        (base / token.rstrip("/")).exists() for base in (ROOT, ROOT / "csuhub", ROOT / "plugins")
    )


def _dotted_exists(name: str) -> bool:
    """``csuhub.retention.requisitions`` or ``csuhub.store.Store``: a module, then attributes."""
    import importlib

    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def architecture_problems(text: str) -> list[str]:
    """Every module, file, link and hook docs/architecture.md names, that does not exist."""
    problems = [
        f"no such file or folder: {p}" for p in sorted(_doc_paths(text)) if not _path_exists(p)
    ]
    dotted = {t for t in _CODE.findall(text) if re.match(r"^csuhub(\.\w+)+$", t)}
    problems += [
        f"no such module or attribute: {d}" for d in sorted(dotted) if not _dotted_exists(d)
    ]
    for link in _LINK.findall(text):
        if "://" not in link and not (ARCHITECTURE.parent / link).exists():
            problems.append(f"broken link: {link}")
    hooks = {a or b for a, b in _HOOK_NEAR.findall(text)}
    hooks |= {t for t in _CODE.findall(text) if _HOOK_FAMILY.match(t)}
    known = set(_hookspecs())
    problems += [f"no such hook in hookspecs: {h}" for h in sorted(hooks - known)]
    return problems


def test_the_architecture_of_record_names_only_what_exists() -> None:
    assert architecture_problems(ARCHITECTURE.read_text()) == []


def test_the_architecture_check_catches_what_it_should() -> None:
    """The checker itself: each kind of stale reference is caught, real ones pass."""
    assert (
        architecture_problems(
            "`csuhub/hub.py`, `recording/export.py`, `store/`, `plugins/csuhub_simcam/`, "
            "`csuhub_onvif`, `csuhub.store.Store`, [hooks](hooks.md), the `retention_hold` hook"
        )
        == []
    )
    stale = architecture_problems(
        "`csuhub/foo.py`, `recording/gone.py`, `plugins/csuhub_x/`, `nothing/`, "
        "`csuhub.store.Nope`, [x](gone.md), the (`retention_policy` hook), "
        "`register_things`, `camera_for_nothing`"
    )
    assert len(stale) == 9, stale


def test_the_architecture_does_not_call_built_things_unbuilt() -> None:
    text = ARCHITECTURE.read_text()
    _, _, unbuilt = text.partition("## Designed, not yet built")
    for built in ("sweeper", "requisition"):
        assert built not in unbuilt.lower(), f"{built} is built but listed as not yet built"
