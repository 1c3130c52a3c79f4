"""Loading and validating the site configuration: this module only re-exports.

The pipeline: YAML with positions and tags (``yaml_loader``, ``nodes``,
``files``) -> blueprint instances expanded (``csuhub.blueprint``) -> each
section validated by its schema, core or plugin (``schema``) -> cross-section
rules (``checks``) -> ``SiteConfig`` (``site``), whose typed ``settings``
(``settings``) carry the schema's defaults. ``secrets`` reads ``secrets.yaml``.

Why the pipeline's names are re-exported lazily: ``csuhub.blueprint`` is
built on this package's lower layers (nodes, issues, validators), and Python
runs this ``__init__`` before any of them. Importing ``site`` here eagerly
would make ``csuhub.blueprint`` import itself back half-initialised; with
PEP 562 attribute loading the runtime import graph stays acyclic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from csuhub.config.issues import ERROR, WARNING, ConfigInvalid, ConfigIssue
from csuhub.config.nodes import Mark, Secret, YamlError

if TYPE_CHECKING:
    from csuhub.config.secrets import load_secrets
    from csuhub.config.settings import Settings
    from csuhub.config.site import (
        LoadedFile,
        SiteConfig,
        load_raw,
        load_site,
        load_site_text,
        validate_site,
    )

__all__ = [
    "ERROR",
    "WARNING",
    "ConfigInvalid",
    "ConfigIssue",
    "LoadedFile",
    "Mark",
    "Secret",
    "Settings",
    "SiteConfig",
    "YamlError",
    "load_raw",
    "load_secrets",
    "load_site",
    "load_site_text",
    "validate_site",
]

#: name -> the module that defines it, imported on first use
_LAZY = {
    "LoadedFile": "csuhub.config.site",
    "SiteConfig": "csuhub.config.site",
    "load_raw": "csuhub.config.site",
    "load_site": "csuhub.config.site",
    "load_site_text": "csuhub.config.site",
    "validate_site": "csuhub.config.site",
    "load_secrets": "csuhub.config.secrets",
    "Settings": "csuhub.config.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
