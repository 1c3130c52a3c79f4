"""The example layout plugin of docs/layouts.md, run from its source.

It is not pip-installed here (that would add its entry point to every hub of
the suite): its package is imported from examples/csuhub-example-layout, and
its own test file is loaded and its tests collected in this module, so the
code and tests the documentation shows are the ones that pass.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "csuhub-example-layout"


def _load(name: str, path: Path, package: bool = False) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if package else None
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


example = _load(
    "csuhub_example_layout", EXAMPLE / "csuhub_example_layout" / "__init__.py", package=True
)
_tests = _load("csuhub_example_layout_tests", EXAMPLE / "tests" / "test_example_layout.py")
globals().update({n: getattr(_tests, n) for n in dir(_tests) if n.startswith("test_")})


def test_the_example_is_the_one_documented() -> None:
    doc = (EXAMPLE.parent.parent / "docs" / "layouts.md").read_text()
    for path in ("csuhub_example_layout/__init__.py", "pyproject.toml"):
        source = (EXAMPLE / path).read_text()
        assert source.strip() in doc, f"docs/layouts.md does not show {path} as it is"
