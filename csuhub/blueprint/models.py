"""Blueprints: reusable, validated templates of configuration.

A blueprint is validated when it is constructed (Home Assistant's rule): a
``Blueprint`` object that exists is well formed, every ``!input`` it uses is
declared, and every default fits its selector. Instantiating it validates the
given inputs against their selectors and returns the body with the inputs
substituted, keeping positions so that errors still point at a file and line.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from csuhub import __version__
from csuhub.blueprint.selectors import Selector, SelectorContext, parse_selector
from csuhub.config.issues import ConfigIssue
from csuhub.config.nodes import InputRef, Mark, NodeDict, NodeList, NodeStr, position_of

#: Where a blueprint can be used; ``site`` is the whole file.
DOMAINS = ("site", "camera", "wall", "retention", "recording", "call_line", "discovery")

_MISSING = object()

META_SCHEMA = vol.Schema(
    {
        vol.Required("name"): vol.All(str, vol.Length(min=1, max=100)),
        vol.Required("domain"): vol.In(
            DOMAINS, msg=f"unknown domain; domains are {', '.join(DOMAINS)}"
        ),
        vol.Optional("description", default=""): vol.Any(None, str),
        vol.Optional("author", default=""): vol.Any(None, str),
        vol.Optional("source_url"): vol.All(
            str, vol.Match(r"^https?://", msg="expected an http(s) URL")
        ),
        vol.Optional("min_version"): vol.All(
            str, vol.Match(r"^\d+(\.\d+){0,2}$", msg="expected a version such as 0.1 or 1.2.3")
        ),
        vol.Optional("input", default={}): dict,
    }
)

INPUT_SCHEMA = vol.Schema(
    {
        vol.Optional("name"): str,
        vol.Optional("description", default=""): str,
        vol.Optional("default"): object,
        vol.Required("selector"): object,
    }
)

SECTION_SCHEMA = vol.Schema(
    {
        vol.Optional("name"): str,
        vol.Optional("description", default=""): str,
        vol.Optional("collapsed", default=False): bool,
        vol.Required("input"): dict,
    }
)

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class BlueprintError(Exception):
    """A blueprint (or an instance of it) is invalid; ``issues`` says where and why."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class BlueprintInput:
    key: str
    name: str
    description: str
    selector: Selector
    default: Any = _MISSING
    section: str | None = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "selector": {self.selector.type: self.selector.options},
            "required": self.required,
            "section": self.section,
        }
        if not self.required:
            out["default"] = _plain(self.default)
        return out


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)[:3]
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


class Blueprint:
    """A loaded, validated blueprint."""

    def __init__(self, data: Any, path: str) -> None:
        self.path = path
        issues: list[ConfigIssue] = []
        top = Mark(path, 1, 1)
        if not isinstance(data, dict) or "blueprint" not in data:
            raise BlueprintError(
                [
                    ConfigIssue(
                        "not a blueprint: a top-level 'blueprint:' section is required",
                        (),
                        getattr(data, "mark", None) or top,
                    )
                ]
            )
        raw_meta = data["blueprint"]
        try:
            meta = META_SCHEMA(raw_meta)
        except vol.MultipleInvalid as err:
            for e in err.errors:
                where = ["blueprint", *e.path]
                issues.append(ConfigIssue(_msg(e), tuple(where), position_of(data, where) or top))
            raise BlueprintError(issues) from None
        self.name: str = meta["name"]
        self.domain: str = meta["domain"]
        self.description: str = meta["description"] or ""
        self.author: str = meta["author"] or ""
        self.source_url: str | None = meta.get("source_url")
        self.min_version: str | None = meta.get("min_version")
        if self.min_version and _version_tuple(self.min_version) > _version_tuple(__version__):
            issues.append(
                ConfigIssue(
                    f"needs csuhub {self.min_version} or newer (this is {__version__})",
                    ("blueprint", "min_version"),
                    position_of(data, ["blueprint", "min_version"]),
                )
            )
        self.inputs: dict[str, BlueprintInput] = {}
        self._parse_inputs(data, raw_meta.get("input") or {}, ["blueprint", "input"], None, issues)
        self.body = NodeDict({k: v for k, v in data.items() if k != "blueprint"})
        if isinstance(data, NodeDict):  # keep positions: errors in the output point here
            self.body.mark = data.mark
            self.body.key_marks = {k: m for k, m in data.key_marks.items() if k != "blueprint"}
        if not self.body:
            issues.append(ConfigIssue("the blueprint has no content besides its metadata", (), top))
        for ref in _input_refs(self.body):
            if ref.name not in self.inputs:
                close = difflib.get_close_matches(ref.name, sorted(self.inputs), n=1)
                issues.append(
                    ConfigIssue(
                        f"!input {ref.name!r} is not declared under blueprint.input",
                        (),
                        ref.mark or top,
                        f"did you mean {close[0]!r}?" if close else None,
                    )
                )
        if issues:
            raise BlueprintError(issues)

    def _parse_inputs(
        self,
        data: Any,
        inputs: Any,
        where: list[Any],
        section: str | None,
        issues: list[ConfigIssue],
    ) -> None:
        if not isinstance(inputs, dict):
            issues.append(
                ConfigIssue("expected a mapping of inputs", tuple(where), position_of(data, where))
            )
            return
        for key, spec in inputs.items():
            here = [*where, key]
            if not isinstance(key, str) or not _KEY.match(key):
                issues.append(
                    ConfigIssue(
                        f"input name {key!r} must be lowercase letters, digits and '_'",
                        tuple(here),
                        position_of(data, here, key=True),
                    )
                )
                continue
            if isinstance(spec, dict) and "input" in spec and "selector" not in spec:
                if section is not None:
                    issues.append(
                        ConfigIssue(
                            "sections cannot be nested",
                            tuple(here),
                            position_of(data, here, key=True),
                        )
                    )
                    continue
                try:
                    SECTION_SCHEMA(spec)
                except vol.MultipleInvalid as err:
                    for e in err.errors:
                        p = [*here, *e.path]
                        issues.append(ConfigIssue(_msg(e), tuple(p), position_of(data, p)))
                    continue
                self._parse_inputs(data, spec["input"], [*here, "input"], key, issues)
                continue
            try:
                parsed = INPUT_SCHEMA(spec if isinstance(spec, dict) else {})
                if not isinstance(spec, dict):
                    raise vol.Invalid("an input is a mapping with at least a selector")
            except vol.MultipleInvalid as err:
                for e in err.errors:
                    p = [*here, *e.path]
                    issues.append(ConfigIssue(_msg(e), tuple(p), position_of(data, p)))
                continue
            except vol.Invalid as err:
                issues.append(ConfigIssue(err.msg, tuple(here), position_of(data, here)))
                continue
            try:
                selector = parse_selector(parsed["selector"])
            except vol.Invalid as err:
                p = [*here, "selector"]
                issues.append(ConfigIssue(err.msg, tuple(p), position_of(data, p)))
                continue
            if key in self.inputs:
                issues.append(
                    ConfigIssue(
                        f"input {key!r} is declared twice",
                        tuple(here),
                        position_of(data, here, key=True),
                    )
                )
                continue
            default = parsed.get("default", _MISSING)
            if default is not _MISSING and default is not None:
                try:
                    selector.validate(default, SelectorContext(cameras_known=False))
                except vol.Invalid as err:
                    p = [*here, "default"]
                    issues.append(
                        ConfigIssue(
                            f"default does not fit its selector: {err.msg}",
                            tuple(p),
                            position_of(data, p),
                        )
                    )
            self.inputs[key] = BlueprintInput(
                key=key,
                name=parsed.get("name") or key.replace("_", " "),
                description=parsed["description"],
                selector=selector,
                default=default,
                section=section,
            )

    # -- instances ----------------------------------------------------------

    def instantiate(
        self,
        values: Any,
        context: SelectorContext,
        *,
        where: tuple[Any, ...] = (),
        root: Any = None,
        fallback: Mark | None = None,
    ) -> Any:
        """Validate ``values`` for the inputs and return the substituted body.

        ``where`` is the key path of the ``input:`` mapping inside ``root``
        (the loaded site), used to locate errors.
        """
        issues: list[ConfigIssue] = []
        values = values if values is not None else {}

        def locate(path: tuple[Any, ...], key: bool = False) -> Mark | None:
            return (
                position_of(root, list(path), key=key) if root is not None else None
            ) or fallback

        if not isinstance(values, dict):
            raise BlueprintError(
                [
                    ConfigIssue(
                        "input must be a mapping of input names to values", where, locate(where)
                    )
                ]
            )
        resolved: dict[str, Any] = {}
        for key, value in values.items():
            if key not in self.inputs:
                close = difflib.get_close_matches(str(key), sorted(self.inputs), n=1)
                issues.append(
                    ConfigIssue(
                        f"unknown input {key!r} for blueprint {self.name!r}",
                        (*where, key),
                        locate((*where, key), key=True),
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"inputs: {', '.join(sorted(self.inputs)) or 'none'}",
                    )
                )
                continue
            spec = self.inputs[key]
            try:
                spec.selector.validate(value, context)
            except vol.Invalid as err:
                issues.append(
                    ConfigIssue(
                        f"{err.msg} (selector {spec.selector.describe()})",
                        (*where, key),
                        locate((*where, key)),
                    )
                )
                continue
            resolved[key] = value
        for key, spec in self.inputs.items():
            if key in values:
                continue
            if spec.required:
                issues.append(
                    ConfigIssue(
                        f"missing input {key!r} ({spec.name}) for blueprint {self.name!r}",
                        where,
                        locate(where, key=True),
                    )
                )
            else:
                resolved[key] = spec.default
        if issues:
            raise BlueprintError(issues)
        return _substitute(self.body, resolved)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domain": self.domain,
            "description": self.description,
            "author": self.author,
            "source_url": self.source_url,
            "min_version": self.min_version,
            "path": self.path,
            "inputs": [i.as_dict() for i in self.inputs.values()],
        }


def _msg(err: vol.Invalid) -> str:
    if err.msg == "extra keys not allowed" and err.path:
        return f"unknown key {err.path[-1]!r}"
    if err.msg == "required key not provided" and err.path:
        return f"required key {err.path[-1]!r} is missing"
    return err.msg


def _input_refs(node: Any) -> list[InputRef]:
    found: list[InputRef] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, InputRef):
            found.append(current)
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    found.sort(key=lambda r: (r.mark.line, r.mark.column) if r.mark else (0, 0))
    return found


def _substitute(node: Any, values: dict[str, Any]) -> Any:
    """A deep copy of ``node`` with inputs replaced; positions are preserved."""
    if isinstance(node, InputRef):
        return values[node.name]
    if isinstance(node, NodeDict):
        out = NodeDict()
        out.mark = node.mark
        for key, value in node.items():
            out[key] = _substitute(value, values)
            if key in node.key_marks:
                out.key_marks[key] = node.key_marks[key]
        return out
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, NodeList):
        out_list = NodeList(_substitute(v, values) for v in node)
        out_list.mark = node.mark
        out_list.item_marks = list(node.item_marks)
        return out_list
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return node


def _plain(value: Any) -> Any:
    if isinstance(value, NodeStr):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
