"""Turning a voluptuous error into a ``ConfigIssue`` an admin can act on.

Shared by the core sections (``validate_site``) and by plugin-owned option
blocks (``checks``): both report ``file:line:col: key.path: message``, "unknown
key" with a "did you mean", and "required key 'x' is missing".
"""

from __future__ import annotations

import difflib
from typing import Any

import voluptuous as vol

from csuhub.config.issues import ConfigIssue
from csuhub.config.nodes import Mark, origin_of, position_of


def issue_from_invalid(
    raw: Any, err: vol.Invalid, base: tuple[Any, ...], schema: Any, file: str
) -> ConfigIssue:
    """``err`` from validating the value at ``base`` inside ``raw`` against ``schema``."""
    path = (*base, *err.path)
    message = err.msg
    unknown_key = message == "extra keys not allowed"
    mark = (
        position_of(raw, list(path), key=unknown_key)
        or getattr(raw, "mark", None)
        or Mark(file, 1, 1)
    )
    hint = None
    if unknown_key and len(err.path) >= 1:
        allowed = keys_at(schema, list(err.path[:-1]))
        unknown = str(path[-1])
        message = f"unknown key {unknown!r}"
        close = difflib.get_close_matches(unknown, sorted(allowed or ()), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif allowed:
            hint = f"allowed: {', '.join(sorted(allowed))}"
        elif allowed is not None:
            hint = "no keys are accepted here"
    elif message == "required key not provided":
        message = f"required key {str(path[-1])!r} is missing"
    elif message.startswith("expected dict"):
        message = "expected a mapping"
    elif message.startswith("expected list"):
        message = "expected a list"
    return ConfigIssue(message, path, mark, hint, via=origin_of(raw, list(path)))


def issues_from_invalid(
    raw: Any, err: vol.Invalid, base: tuple[Any, ...], schema: Any, file: str
) -> list[ConfigIssue]:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    return [issue_from_invalid(raw, e, base, schema, file) for e in errors]


def keys_at(schema: Any, path: list[Any]) -> set[str] | None:
    """Best-effort: the keys a dict schema accepts at ``path`` (for "did you mean");
    ``None`` when the schema is not one this can read (a plain function)."""
    node = unwrap(schema)
    for part in path:
        if isinstance(part, int):
            if isinstance(node, list) and node:
                node = unwrap(node[0])
                continue
            if getattr(node, "__csuhub_each__", None) is not None:
                node = unwrap(node.__csuhub_each__)
                continue
            return None
        if not isinstance(node, dict):
            return None
        for key, value in node.items():
            if str(getattr(key, "schema", key)) == str(part):
                node = unwrap(value)
                break
        else:
            return None
    if isinstance(node, dict):
        return {str(getattr(k, "schema", k)) for k in node}
    return None


def unwrap(node: Any) -> Any:
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
