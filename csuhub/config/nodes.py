"""What the YAML loader produces: values that remember where they were written.

Admins fix what they can find: every mapping and sequence knows its file,
line and column, and so does each of its keys and items, so a schema error
deep in a blueprint can still be reported as ``site.yaml:42:7``. A value
from ``secrets.yaml`` is a ``Secret`` that knows its name and never shows
its value. These types sit below the loader, the blueprint expander and the
issue reporting, which all use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Mark:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class YamlError(Exception):
    """Bad YAML: carries the position so the CLI can print ``file:line:col: message``."""

    def __init__(self, message: str, mark: Mark | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}" if self.mark else self.message


class TagError(YamlError):
    """A value the loader cannot give (a missing ``!secret`` name, an unset
    ``!env_var``, an impossible date...) in a document that is otherwise fine:
    a loader that recovers leaves an ``Unresolved`` in its place and goes on."""


class NodeDict(dict[Any, Any]):
    """A mapping that knows where it and each of its keys were written.

    ``origin`` is set on what a blueprint produced: the position of the
    ``use_blueprint`` instance, so an error inside the blueprint's text can
    still say which instance it concerns.
    """

    __slots__ = ("key_marks", "mark", "origin")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mark: Mark | None = None
        self.key_marks: dict[Any, Mark] = {}
        self.origin: Mark | None = None


class NodeList(list[Any]):
    __slots__ = ("item_marks", "mark")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.mark: Mark | None = None
        self.item_marks: list[Mark] = []


class NodeStr(str):
    """A string scalar with its position (ints and bools keep their plain types)."""

    __slots__ = ("mark",)
    mark: Mark | None


class Unresolved(NodeStr):
    """What a recovering loader leaves where a ``TagError`` was: it carries the
    error, and ``validate_site`` reports every one it finds in a tree, so a
    tree holding one is never valid, whoever loaded it. Its text is not the
    value (there is none) and is never shown: problems at its place are its."""

    __slots__ = ("error",)
    error: str


def unresolved(error: str, mark: Mark) -> Unresolved:
    # distinct per place, so two of them as mapping keys are not a duplicate key
    value = Unresolved(f"<unresolved {mark}>")
    value.mark = mark
    value.error = error
    return value


class Secret(str):
    """A value that came from ``secrets.yaml``: usable as a string, never shown by repr."""

    __slots__ = ("secret_name",)
    secret_name: str

    def __repr__(self) -> str:
        return f"<secret {self.secret_name}>"


@dataclass(frozen=True, slots=True)
class InputRef:
    """A ``!input name`` placeholder in a blueprint, replaced on instantiation."""

    name: str
    mark: Mark | None = None


def make_secret(name: str, value: Any) -> Secret:
    """A secret value that knows its name and never shows itself in a repr."""
    secret = Secret(str(value))
    secret.secret_name = name
    return secret


def origin_of(data: Any, path: list[Any]) -> Mark | None:
    """The innermost blueprint instance that produced the node at ``path``."""
    origin: Mark | None = getattr(data, "origin", None)
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        origin = getattr(node, "origin", None) or origin
    return origin


def position_of(data: Any, path: list[Any], *, key: bool = False) -> Mark | None:
    """The best known position for a key path inside loaded data.

    With ``key=True`` the position of the last key itself (for "unknown key"),
    otherwise that of its value when the value is a string.
    """
    best: Mark | None = getattr(data, "mark", None)
    node = data
    for index, part in enumerate(path):
        if isinstance(node, NodeDict) and part in node:
            best = node.key_marks.get(part, best)
            if key and index == len(path) - 1:
                return best
            node = node[part]
        elif isinstance(node, NodeList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_marks[part] if part < len(node.item_marks) else best
            node = node[part]
        else:
            break
        if isinstance(node, NodeStr) and node.mark is not None:
            best = node.mark
    return best
