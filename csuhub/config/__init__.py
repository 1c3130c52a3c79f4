"""Loading and validating the site configuration.

The one promise of this package: bad input becomes a list of ``ConfigIssue``
(``file:line:col: key.path: message``), never a traceback, and *all* issues
are reported at once.

The pipeline: YAML with positions and tags (``yaml_loader``) -> blueprint
instances expanded (``csuhub.blueprint``) -> each section validated by its
schema, core or plugin (``schema``) -> cross-section rules (``checks``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.config.issues import ERROR, WARNING, ConfigInvalid, ConfigIssue
from csuhub.config.schema import CORE_SECTIONS, LILLE_DISTRICTS, section_schemas
from csuhub.config.yaml_loader import (
    LoadContext,
    Mark,
    YamlError,
    load_file,
    loads,
    origin_of,
    position_of,
)
from csuhub.specs import ConfigSectionSpec

if TYPE_CHECKING:
    from csuhub.blueprint.loader import BlueprintLoader
    from csuhub.registry import Registry

__all__ = [
    "ERROR",
    "WARNING",
    "ConfigInvalid",
    "ConfigIssue",
    "LoadedFile",
    "Mark",
    "SiteConfig",
    "YamlError",
    "load_raw",
    "load_site",
    "validate_site",
]


@dataclass(frozen=True)
class LoadedFile:
    """A site file read from disk, tags resolved, with every file it pulled in."""

    raw: Any
    path: Path
    files: frozenset[Path] = frozenset()


def load_raw(path: Path) -> LoadedFile:
    """Read a site file with ``!secret``/``!include``/``!env_var`` resolved.

    ``OSError`` means unreadable (CLI exit 2); ``ConfigInvalid`` means bad YAML.
    """
    context = LoadContext()
    try:
        raw = load_file(path, context)
    except YamlError as err:
        raise ConfigInvalid(
            [ConfigIssue(err.message, (), err.mark or Mark(str(path), 1, 1))]
        ) from None
    return LoadedFile(raw, path, frozenset(context.files))


@dataclass(frozen=True)
class SiteConfig:
    """A validated site configuration. ``source`` is the file it came from, if any."""

    data: dict[str, Any]
    source: Path | None = None
    warnings: tuple[ConfigIssue, ...] = ()
    #: files read (site, includes, secrets, blueprints): a reload checks them
    files: frozenset[Path] = frozenset()
    blueprints: dict[str, str] = field(default_factory=dict)

    @property
    def hub(self) -> dict[str, Any]:
        return dict(self.data["hub"])

    @property
    def disabled_plugins(self) -> list[str]:
        return list(self.data["plugins"]["disabled"])

    def section(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


def validate_site(
    raw: Any,
    file: str,
    sections: Iterable[ConfigSectionSpec] = (),
    *,
    registry: Registry | None = None,
    loader: BlueprintLoader | None = None,
    strict: bool = False,
    today: dt.date | None = None,
    files: Iterable[Path] = (),
) -> SiteConfig:
    """Expand blueprints, validate every section, run cross checks.

    Raises ``ConfigInvalid`` with every issue (warnings included) when there
    is at least one error (or any warning, with ``strict``).
    """
    from csuhub.blueprint.expand import Expander
    from csuhub.blueprint.loader import BlueprintLoader
    from csuhub.config.checks import Checker

    source = Path(file) if file and not file.startswith("<") else None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        mark = getattr(raw, "mark", None) or Mark(file, 1, 1)
        raise ConfigInvalid([ConfigIssue("the site file must be a mapping of sections", (), mark)])
    loader = loader or BlueprintLoader.for_site(source)
    expander = Expander(loader, LILLE_DISTRICTS)
    expanded = expander.expand_site(raw, file)
    issues = list(expander.issues)
    schemas = section_schemas(sections)
    data: dict[str, Any] = {}
    failed_sections: set[str] = set()
    for key in expanded if isinstance(expanded, dict) else ():
        if key not in schemas and key != "use_blueprint":
            issues.append(_unknown_section(expanded, str(key), schemas, file))
    for name, (schema, default) in schemas.items():
        if name in expanded and not (expanded[name] is None and default is not None):
            value = expanded[name]  # "section:" with nothing under it means the defaults
        elif default is not None:
            value = default
        else:
            continue
        try:
            data[name] = schema(value)
        except vol.MultipleInvalid as err:
            failed_sections.add(name)
            issues.extend(_issue(expanded, e, name, schema, file) for e in err.errors)
        except vol.Invalid as err:
            failed_sections.add(name)
            issues.append(_issue(expanded, err, name, schema, file))
    issues.extend(Checker(data, expanded, file, registry, today).run(failed_sections))
    if strict:
        issues = [dataclasses.replace(i, severity=ERROR) for i in issues]
    issues.sort(key=ConfigIssue.sort_key)
    if any(i.severity == ERROR for i in issues):
        raise ConfigInvalid(issues)
    return SiteConfig(
        data=data,
        source=source,
        warnings=tuple(issues),
        files=frozenset(files) | frozenset(Path(p) for p in expander.used.values()),
        blueprints=dict(expander.used),
    )


def load_site(path: Path, sections: Iterable[ConfigSectionSpec] = (), **kwargs: Any) -> SiteConfig:
    """Load and validate a site file. ``OSError`` means unreadable (CLI exit 2)."""
    loaded = load_raw(path)
    return validate_site(loaded.raw, str(path), sections, files=loaded.files, **kwargs)


def load_site_text(
    text: str, file: str, sections: Iterable[ConfigSectionSpec] = (), **kwargs: Any
) -> SiteConfig:
    try:
        raw = loads(text, file)
    except YamlError as err:
        raise ConfigInvalid([ConfigIssue(err.message, (), err.mark)]) from None
    return validate_site(raw, file, sections, **kwargs)


def _unknown_section(raw: Any, key: str, schemas: dict[str, Any], file: str) -> ConfigIssue:
    close = difflib.get_close_matches(key, sorted(schemas), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif key not in CORE_SECTIONS:
        hint = "no loaded plugin provides this section; see `csuhub plugins`"
    else:
        hint = None
    mark = position_of(raw, [key], key=True) or Mark(file, 1, 1)
    return ConfigIssue(f"unknown key {key!r}", (key,), mark, hint)


def _issue(raw: Any, err: vol.Invalid, section: str, schema: Any, file: str) -> ConfigIssue:
    path = (section, *err.path)
    message = err.msg
    unknown_key = message == "extra keys not allowed"
    mark = (
        position_of(raw, list(path), key=unknown_key)
        or getattr(raw, "mark", None)
        or Mark(file, 1, 1)
    )
    hint = None
    if unknown_key and len(path) > 1:
        allowed = _keys_at(schema, list(path[1:-1]))
        unknown = str(path[-1])
        message = f"unknown key {unknown!r}"
        close = difflib.get_close_matches(unknown, sorted(allowed), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif allowed:
            hint = f"allowed: {', '.join(sorted(allowed))}"
    elif message == "required key not provided":
        message = f"required key {str(path[-1])!r} is missing"
    elif message.startswith("expected dict"):
        message = "expected a mapping"
    elif message.startswith("expected list"):
        message = "expected a list"
    return ConfigIssue(message, path, mark, hint, via=origin_of(raw, list(path)))


def _keys_at(schema: Any, path: list[Any]) -> set[str]:
    """Best-effort: the keys a dict schema accepts at ``path`` (for "did you mean")."""
    node = _unwrap(schema)
    for part in path:
        if isinstance(part, int):
            if isinstance(node, list) and node:
                node = _unwrap(node[0])
                continue
            if getattr(node, "__csuhub_each__", None) is not None:
                node = _unwrap(node.__csuhub_each__)
                continue
            return set()
        if not isinstance(node, dict):
            return set()
        for key, value in node.items():
            if str(getattr(key, "schema", key)) == str(part):
                node = _unwrap(value)
                break
        else:
            return set()
    if isinstance(node, dict):
        return {str(getattr(k, "schema", k)) for k in node}
    return set()


def _unwrap(node: Any) -> Any:
    for _ in range(10):
        if isinstance(node, vol.Schema):
            node = node.schema
        elif isinstance(node, vol.All):
            inner = [
                v
                for v in node.validators
                if isinstance(v, dict | list | vol.Schema) or hasattr(v, "__csuhub_each__")
            ]
            if not inner:
                return node
            node = inner[0]
        elif hasattr(node, "__csuhub_each__") and not isinstance(node, dict):
            return node
        else:
            return node
    return node
