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


# --- plugins import only the public API ---------------------------------------------

#: what any plugin module may import of csuhub, and what a plugin's tests may add
PUBLIC_API = frozenset({"csuhub.api"})
TEST_KIT = frozenset({"csuhub.testing"})
_IMPORTERS = frozenset({"import_module", "__import__"})


def _is_test_file(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def _csuhub_module(name: str) -> bool:
    return name == "csuhub" or name.startswith("csuhub.")


def plugin_import_problems(source: str, path: Path) -> list[str]:
    """Every import of a ``csuhub`` module other than the public API (and, in a
    test, the test kit) in ``source``: at module level or in a function, as
    ``import``, ``from csuhub import x``, or ``importlib.import_module("csuhub.x")``."""
    allowed = PUBLIC_API | TEST_KIT if _is_test_file(path) else PUBLIC_API
    imported: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            imported += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "csuhub":  # from csuhub import api: the module csuhub.api
                imported += [(node.lineno, f"csuhub.{a.name}") for a in node.names]
            else:
                imported.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                called in _IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                imported.append((node.lineno, first.value))
    return [
        f"{path}:{line}: imports {name}; plugins use {' or '.join(sorted(allowed))}"
        for line, name in imported
        if _csuhub_module(name) and name not in allowed
    ]


def _plugin_sources() -> list[Path]:
    return sorted(
        p
        for base in ("plugins", "examples")
        for p in (ROOT / base).rglob("*.py")
        if "__pycache__" not in p.parts and ".venv" not in p.parts
    )


def test_plugins_import_only_the_public_api() -> None:
    sources = _plugin_sources()
    assert len(sources) >= 10, sources  # the walk finds the bundled plugins and the example
    problems = [
        problem
        for path in sources
        for problem in plugin_import_problems(path.read_text(), path.relative_to(ROOT))
    ]
    assert not problems, problems


def test_the_plugin_import_check_catches_what_it_should() -> None:
    plugin, test = Path("plugins/x/__init__.py"), Path("examples/x/tests/test_x.py")
    fine = (
        "import csuhub.api\n"
        "import csuhub.api as api\n"
        "from csuhub.api import hookimpl, cv\n"
        "from csuhub import api\n"
        "from csuhub_onvif import driver\n"
        "import csuhub_example_vendor\n"
        "from . import wsdiscovery\n"
        "import importlib\n"
        "importlib.import_module('csuhub_rtsp.rtsp')\n"
    )
    assert plugin_import_problems(fine, plugin) == []
    assert plugin_import_problems("from csuhub.testing import sweep_at\n", test) == []
    violations = (
        "import csuhub\n"
        "import csuhub.hub\n"
        "import csuhub.store.retention as r\n"
        "from csuhub.hookspecs import hookimpl\n"
        "from csuhub import hub\n"
        "from csuhub import api, specs\n"
        "from csuhub.testing import make_hub\n"
        "def later():\n"
        "    from csuhub.store.retention import FOREVER\n"
        "    import importlib\n"
        "    return importlib.import_module('csuhub.web.auth'), __import__('csuhub.events')\n"
    )
    found = plugin_import_problems(violations, plugin)
    assert len(found) == 10, found
    assert all(line.startswith("plugins/x/__init__.py:") for line in found)
    # the test kit is for tests only
    assert plugin_import_problems("import csuhub.testing\n", plugin) != []


def test_the_public_api_is_explicit_and_documented() -> None:
    from csuhub import api

    doc = (ROOT / "docs" / "hooks.md").read_text()
    assert len(api.__all__) == len(set(api.__all__))
    missing = [n for n in api.__all__ if not hasattr(api, n)]
    assert not missing, f"csuhub.api.__all__ names what it does not define: {missing}"
    # named in code: a backticked span (`hub_of(request)`) or a fenced block
    spans = re.findall(r"```.*?```|`[^`\n]+`", doc, re.S)
    named = {word for span in spans for word in re.findall(r"[A-Za-z_]\w*", span)}
    undocumented = [n for n in api.__all__ if n not in named]
    assert not undocumented, f"csuhub.api names not documented in docs/hooks.md: {undocumented}"
    assert "HubKey" not in api.__all__  # internal: no plugin needs it
