"""Loading and validating the site configuration.

The one promise of this package: bad input becomes a list of ``ConfigIssue``
(``file:line:col: key.path: message``), never a traceback, and *all* issues
are reported at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from csuhub.config.schema import CORE_SECTIONS, site_schema
from csuhub.config.yaml_loader import Mark, YamlError, load_file, loads, position_of
from csuhub.specs import ConfigSectionSpec

__all__ = [
    "ConfigInvalid",
    "ConfigIssue",
    "Mark",
    "SiteConfig",
    "YamlError",
    "load_site",
    "validate_site",
]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem, located and explained."""

    message: str
    path: tuple[Any, ...] = ()
    mark: Mark | None = None
    hint: str | None = None

    @property
    def key_path(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out

    def __str__(self) -> str:
        where = str(self.mark) if self.mark else "<config>"
        text = (
            f"{where}: {self.key_path}: {self.message}" if self.path else f"{where}: {self.message}"
        )
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.mark.file if self.mark else None,
            "line": self.mark.line if self.mark else None,
            "column": self.mark.column if self.mark else None,
            "path": self.key_path,
            "message": self.message,
            "hint": self.hint,
        }


class ConfigInvalid(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class SiteConfig:
    """A validated site configuration. ``source`` is the file it came from, if any."""

    data: dict[str, Any]
    source: Path | None = None

    @property
    def hub(self) -> dict[str, Any]:
        return dict(self.data["hub"])

    @property
    def disabled_plugins(self) -> list[str]:
        return list(self.data["plugins"]["disabled"])

    def section(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


def validate_site(raw: Any, file: str, sections: Iterable[ConfigSectionSpec] = ()) -> SiteConfig:
    """Validate loaded YAML against core and plugin sections; raise ``ConfigInvalid``."""
    sections = list(sections)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigInvalid(
            [
                ConfigIssue(
                    "the site file must be a mapping of sections",
                    (),
                    getattr(raw, "mark", Mark(file, 1, 1)),
                )
            ]
        )
    schema = site_schema(sections)
    try:
        data = schema(raw)
    except vol.MultipleInvalid as err:
        issues = [_issue(raw, e, schema, file) for e in err.errors]
        issues.sort(key=lambda i: (i.mark.line, i.mark.column) if i.mark else (0, 0))
        raise ConfigInvalid(issues) from None
    return SiteConfig(data=data, source=Path(file) if file and not file.startswith("<") else None)


def load_site(path: Path, sections: Iterable[ConfigSectionSpec] = ()) -> SiteConfig:
    """Load and validate a site file. ``OSError`` means unreadable (CLI exit 2)."""
    try:
        raw = load_file(path)
    except YamlError as err:
        raise ConfigInvalid(
            [ConfigIssue(err.message, (), err.mark or Mark(str(path), 1, 1))]
        ) from None
    return validate_site(raw, str(path), sections)


def load_site_text(text: str, file: str, sections: Iterable[ConfigSectionSpec] = ()) -> SiteConfig:
    try:
        raw = loads(text, file)
    except YamlError as err:
        raise ConfigInvalid([ConfigIssue(err.message, (), err.mark)]) from None
    return validate_site(raw, file, sections)


def peek_disabled_plugins(path: Path) -> list[str]:
    """Read ``plugins.disabled`` before plugins load (they must not even be imported).

    Errors are ignored here: the full validation later reports them properly.
    """
    try:
        raw = load_file(path)
        disabled = raw.get("plugins", {}).get("disabled", [])
    except (OSError, YamlError, AttributeError):
        return []
    if isinstance(disabled, str):
        return [disabled]
    return [str(d) for d in disabled] if isinstance(disabled, list) else []


def _issue(raw: Any, err: vol.Invalid, schema: vol.Schema, file: str) -> ConfigIssue:
    path = tuple(err.path)
    message = err.msg
    unknown_key = message == "extra keys not allowed"
    mark = (
        position_of(raw, list(path), key=unknown_key)
        or getattr(raw, "mark", None)
        or Mark(file, 1, 1)
    )
    hint = None
    if unknown_key and path:
        allowed = _keys_at(schema.schema, list(path[:-1]))
        unknown = str(path[-1])
        message = f"unknown key {unknown!r}"
        if allowed:
            close = difflib.get_close_matches(unknown, sorted(allowed), n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif len(path) == 1 and unknown not in CORE_SECTIONS:
                hint = "no loaded plugin provides this section; see `csuhub plugins`"
    elif message == "required key not provided":
        message = f"required key {str(path[-1])!r} is missing"
    elif message.startswith("expected dict"):
        message = "expected a mapping"
    return ConfigIssue(message, path, mark, hint)


def _keys_at(schema: Any, path: list[Any]) -> set[str]:
    """Best-effort: the keys a dict schema accepts at ``path`` (for "did you mean")."""
    node = _unwrap(schema)
    for part in path:
        if isinstance(part, int):
            if isinstance(node, list) and node:
                node = _unwrap(node[0])
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
            inner = [v for v in node.validators if isinstance(v, dict | list | vol.Schema)]
            if not inner:
                return node
            node = inner[0]
        else:
            return node
    return node
