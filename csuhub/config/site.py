"""The site pipeline: read the site file, expand blueprints, validate each
section, run the cross checks, and hand back a ``SiteConfig``.

The one promise of this module: bad input becomes a list of ``ConfigIssue``
(``file:line:col: key.path: message``), never a traceback, and *all* issues
are reported at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.blueprint.expand import Expander
from csuhub.blueprint.loader import BlueprintLoader
from csuhub.config import validators as cv
from csuhub.config.checks import Checker
from csuhub.config.explain import issues_from_invalid
from csuhub.config.issues import ERROR, WARNING, ConfigInvalid, ConfigIssue
from csuhub.config.schema import CORE_SECTIONS, LILLE_DISTRICTS, section_schemas
from csuhub.config.secrets import Secret, site_secrets
from csuhub.config.settings import Settings
from csuhub.config.yaml_loader import (
    LoadContext,
    Mark,
    Unresolved,
    YamlError,
    load_file,
    loads,
    origin_of,
    position_of,
)
from csuhub.specs import ConfigSectionSpec

if TYPE_CHECKING:
    from csuhub.registry import Registry


@dataclass(frozen=True)
class LoadedFile:
    """A site file read from disk, tags resolved, with every file it pulled in."""

    raw: Any
    path: Path
    files: frozenset[Path] = frozenset()
    #: the ``secrets.yaml`` beside the site file, read with it (``Hub.secret``)
    secrets: dict[str, Secret] = field(default_factory=dict, repr=False)


def load_raw(path: Path) -> LoadedFile:
    """Read a site file with ``!secret``/``!include``/``!env_var`` resolved, and
    the ``secrets.yaml`` beside it.

    Blocking file I/O: call it before the event loop runs or in a thread.
    ``OSError`` means unreadable (CLI exit 2); ``ConfigInvalid`` means YAML that
    cannot be read on. A value that cannot be loaded (a missing secret...) is
    left as an ``Unresolved``: ``validate_site`` reports it with every other
    problem, and refuses the tree.
    """
    context = LoadContext(recover=True)  # errors confined to a value: see validate_site
    try:
        raw = load_file(path, context)
        secrets = site_secrets(path, context)
    except YamlError as err:
        raise ConfigInvalid(
            [ConfigIssue(err.message, (), err.mark or Mark(str(path), 1, 1))]
        ) from None
    return LoadedFile(raw, path, frozenset(context.files), secrets)


@dataclass(frozen=True)
class SiteConfig:
    """A validated site configuration. ``source`` is the file it came from, if any."""

    data: dict[str, Any]
    source: Path | None = None
    warnings: tuple[ConfigIssue, ...] = ()
    #: files read (site, includes, secrets, blueprints): a reload checks them
    files: frozenset[Path] = frozenset()
    blueprints: dict[str, str] = field(default_factory=dict)
    #: the loaded tree with positions, so a problem found after validation (a
    #: component that fails to build) can still be reported as ``file:line:col``
    tree: Any = field(default=None, repr=False, compare=False)

    def issue(self, message: str, path: tuple[Any, ...], hint: str | None = None) -> ConfigIssue:
        """An error about the value at ``path``, located in the file it came from."""
        file = str(self.source) if self.source is not None else "<config>"
        mark = position_of(self.tree, list(path)) or Mark(file, 1, 1)
        return ConfigIssue(message, path, mark, hint, via=origin_of(self.tree, list(path)))

    @property
    def hub(self) -> dict[str, Any]:
        return dict(self.data["hub"])

    @property
    def disabled_plugins(self) -> list[str]:
        return list(self.data["plugins"]["disabled"])

    def section(self, name: str, default: Any = None) -> Any:
        """The validated section ``name`` as a plain dict or list, or ``default``
        (None) when the site has no such section: the schema's defaults are not
        applied to a missing plugin section. Core sections are always present;
        typed, with their defaults, they are ``settings``."""
        return self.data.get(name, default)

    @cached_property
    def settings(self) -> Settings:
        """The core sections as typed, frozen settings (built once)."""
        return Settings.from_config(self)


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
    source = Path(file) if file and not file.startswith("<") else None
    # first: whatever else happens, a value the loader could not give is an error
    unloaded = unresolved_issues(raw)
    empty: list[ConfigIssue] = []
    if raw is None or raw == {}:
        empty.append(_empty_site(file))
        raw = {}
    if not isinstance(raw, dict):
        mark = getattr(raw, "mark", None) or Mark(file, 1, 1)
        raise ConfigInvalid(
            unloaded or [ConfigIssue("the site file must be a mapping of sections", (), mark)]
        )
    loader = loader or BlueprintLoader.for_site(source)
    expander = Expander(loader, LILLE_DISTRICTS)
    expanded = expander.expand_site(raw, file)
    issues = [*empty, *expander.issues]
    schemas = section_schemas(sections)
    data: dict[str, Any] = {}
    failed_sections: set[str] = set()
    partial: dict[str, list[Any]] = {}
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
        except vol.Invalid as err:
            failed_sections.add(name)
            issues.extend(issues_from_invalid(expanded, err, (name,), schema, file))
            if isinstance(err, cv.PartialInvalid):  # a list: its good entries are still checked
                partial[name] = err.entries
    checker = Checker(data, expanded, file, registry, today, partial=partial)
    issues.extend(checker.run(failed_sections))
    # a placeholder's own error says what is wrong there; what the schema thinks of it does not
    placeholders = {i.mark for i in unloaded}
    issues = [*unloaded, *(i for i in issues if i.mark not in placeholders)]
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
        tree=expanded,
    )


def load_site(path: Path, sections: Iterable[ConfigSectionSpec] = (), **kwargs: Any) -> SiteConfig:
    """Load and validate a site file. ``OSError`` means unreadable (CLI exit 2)."""
    loaded = load_raw(path)
    return validate_site(loaded.raw, str(path), sections, files=loaded.files, **kwargs)


def load_site_text(
    text: str, file: str, sections: Iterable[ConfigSectionSpec] = (), **kwargs: Any
) -> SiteConfig:
    try:
        raw = loads(text, file, LoadContext(recover=True))
    except YamlError as err:
        raise ConfigInvalid([ConfigIssue(err.message, (), err.mark)]) from None
    return validate_site(raw, file, sections, **kwargs)


def unresolved_issues(raw: Any) -> list[ConfigIssue]:
    """An error for each value the loader could not give (``Unresolved``), keys
    included. Iterative, and each node once: aliases may share subtrees."""
    issues: list[ConfigIssue] = []
    seen: set[int] = set()
    stack = [raw]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Unresolved):
            issues.append(ConfigIssue(node.error, (), node.mark))
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    issues.sort(key=ConfigIssue.sort_key)
    return issues


def _empty_site(file: str) -> ConfigIssue:
    """An empty file is valid YAML and a valid site, and almost certainly a mistake."""
    return ConfigIssue(
        "the site file is empty: the hub would run with the defaults and no cameras",
        (),
        Mark(file, 1, 1),
        "a minimal site names the hub and lists its cameras, e.g. "
        "hub: {name: CSU Lille} and cameras: [{id: cam-1, driver: onvif, options: {...}, "
        "authorization: {reference, issued, expires}}]; see docs/configuration.md",
        WARNING,
    )


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
