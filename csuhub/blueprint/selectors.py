"""Selectors: the type of a blueprint input, and how its value is validated.

Written in a blueprint as ``selector: {TYPE: {OPTIONS}}`` (Home Assistant's
form). Each selector turns into a validator; ``camera`` and ``district``
validate against the site being loaded (its cameras, its districts).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

import csuhub.config.validators as cv


@dataclass(frozen=True)
class SelectorContext:
    """What value validation may look at: the site's cameras and districts."""

    cameras: frozenset[str] = frozenset()
    districts: tuple[str, ...] = ()
    #: False while the camera list is not known yet (validating a blueprint alone)
    cameras_known: bool = True


def _number_options(options: dict[str, Any]) -> dict[str, Any]:
    return vol.Schema(
        {
            vol.Optional("min"): vol.Coerce(float),
            vol.Optional("max"): vol.Coerce(float),
            vol.Optional("step"): vol.Coerce(float),
            vol.Optional("unit"): str,
            vol.Optional("integer", default=False): bool,
        }
    )(options)


OPTION_SCHEMAS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "text": vol.Schema(
        {
            vol.Optional("multiline", default=False): bool,
            vol.Optional("max_length", default=500): vol.All(int, vol.Range(min=1)),
        }
    ),
    "number": _number_options,
    "boolean": vol.Schema({}),
    "duration": vol.Schema({vol.Optional("min"): cv.duration, vol.Optional("max"): cv.duration}),
    "select": vol.Schema(
        {
            vol.Required("options"): vol.All([vol.Any(str, int)], vol.Length(min=1)),
            vol.Optional("multiple", default=False): bool,
        }
    ),
    "camera": vol.Schema({}),
    "cameras": vol.Schema(
        {
            vol.Optional("min", default=0): vol.All(int, vol.Range(min=0)),
            vol.Optional("max"): vol.All(int, vol.Range(min=1)),
        }
    ),
    "district": vol.Schema({}),
    "location": vol.Schema({}),
    "date": vol.Schema({}),
    "list": vol.Schema(
        {
            vol.Optional("min", default=0): vol.All(int, vol.Range(min=0)),
            vol.Optional("max"): vol.All(int, vol.Range(min=1)),
        }
    ),
}

SELECTOR_TYPES = tuple(sorted(OPTION_SCHEMAS))


@dataclass(frozen=True)
class Selector:
    type: str
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.options.items() if v not in (None, False))
        return f"{self.type}({extra})" if extra else self.type

    def validate(self, value: Any, context: SelectorContext) -> Any:
        return _VALIDATORS[self.type](self.options, value, context)


def parse_selector(value: Any) -> Selector:
    """``{number: {min: 1}}`` -> ``Selector("number", {...})``; raises ``vol.Invalid``."""
    if isinstance(value, str):
        value = {value: {}}
    if not isinstance(value, dict) or len(value) != 1:
        raise vol.Invalid(
            "a selector is one type with its options, e.g. {number: {min: 1, max: 8}}"
        )
    ((kind, options),) = value.items()
    if kind not in OPTION_SCHEMAS:
        close = difflib.get_close_matches(str(kind), SELECTOR_TYPES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise vol.Invalid(f"unknown selector {kind!r} (known: {', '.join(SELECTOR_TYPES)}){hint}")
    try:
        parsed = OPTION_SCHEMAS[kind](options or {})
    except vol.Invalid as err:
        raise vol.Invalid(f"selector {kind}: {err}") from None
    return Selector(str(kind), dict(parsed))


def _text(options: dict[str, Any], value: Any, context: SelectorContext) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise vol.Invalid(f"expected text, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    if len(text) > options["max_length"]:
        raise vol.Invalid(f"longer than {options['max_length']} characters")
    if not options["multiline"] and "\n" in text:
        raise vol.Invalid("must be a single line")
    return text


def _number(options: dict[str, Any], value: Any, context: SelectorContext) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid(f"expected a number, got {value!r}")
    if options.get("integer") and not float(value).is_integer():
        raise vol.Invalid(f"expected a whole number, got {value}")
    if "min" in options and value < options["min"]:
        raise vol.Invalid(f"{value} is below the minimum {options['min']:g}")
    if "max" in options and value > options["max"]:
        raise vol.Invalid(f"{value} is above the maximum {options['max']:g}")
    return int(value) if options.get("integer") else value


def _boolean(options: dict[str, Any], value: Any, context: SelectorContext) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {value!r}")
    return value


def _duration(options: dict[str, Any], value: Any, context: SelectorContext) -> Any:
    seconds = cv.duration(value)
    if "min" in options and seconds < options["min"]:
        raise vol.Invalid(f"{value} is shorter than the minimum {options['min']:g}s")
    if "max" in options and seconds > options["max"]:
        raise vol.Invalid(f"{value} is longer than the maximum {options['max']:g}s")
    return value  # keep the admin's spelling (14d); the section schema converts it


def _select(options: dict[str, Any], value: Any, context: SelectorContext) -> Any:
    allowed = options["options"]
    values = value if options["multiple"] and isinstance(value, list) else [value]
    for item in values:
        if item not in allowed:
            close = difflib.get_close_matches(str(item), [str(a) for a in allowed], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise vol.Invalid(f"{item!r} is not one of {', '.join(map(str, allowed))}{hint}")
    return value


def _camera_id(value: Any, context: SelectorContext) -> str:
    camera = cv.slug(value)
    if context.cameras_known and camera not in context.cameras:
        close = difflib.get_close_matches(camera, sorted(context.cameras), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise vol.Invalid(f"no camera {camera!r} in this site{hint}")
    return camera


def _camera(options: dict[str, Any], value: Any, context: SelectorContext) -> str:
    return _camera_id(value, context)


def _cameras(options: dict[str, Any], value: Any, context: SelectorContext) -> list[str]:
    items = cv.ensure_list(value)
    out = [_camera_id(item, context) for item in items]
    if len(out) < options["min"]:
        raise vol.Invalid(f"at least {options['min']} camera(s) needed")
    if "max" in options and len(out) > options["max"]:
        raise vol.Invalid(f"at most {options['max']} camera(s) allowed")
    if len(set(out)) != len(out):
        raise vol.Invalid("a camera is listed twice")
    return out


def _district(options: dict[str, Any], value: Any, context: SelectorContext) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a district name")
    if context.districts and value not in context.districts:
        close = difflib.get_close_matches(value, list(context.districts), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise vol.Invalid(f"{value!r} is not a district of this site{hint}")
    return value


def _location(options: dict[str, Any], value: Any, context: SelectorContext) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise vol.Invalid("expected a location {lat, lon, address, district}")
    location = vol.Schema(
        {
            vol.Required("lat"): cv.latitude,
            vol.Required("lon"): cv.longitude,
            vol.Optional("address"): cv.bounded_text(300),
            vol.Optional("district"): str,
        }
    )(value)
    if "district" in location:
        _district({}, location["district"], context)
    return dict(value)


def _date(options: dict[str, Any], value: Any, context: SelectorContext) -> Any:
    cv.date(value)
    return value


def _list(options: dict[str, Any], value: Any, context: SelectorContext) -> list[str]:
    items = cv.ensure_list(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise vol.Invalid(f"expected a list of texts, got {item!r}")
    if len(items) < options["min"]:
        raise vol.Invalid(f"at least {options['min']} item(s) needed")
    if "max" in options and len(items) > options["max"]:
        raise vol.Invalid(f"at most {options['max']} item(s) allowed")
    return items


_VALIDATORS: dict[str, Callable[[dict[str, Any], Any, SelectorContext], Any]] = {
    "text": _text,
    "number": _number,
    "boolean": _boolean,
    "duration": _duration,
    "select": _select,
    "camera": _camera,
    "cameras": _cameras,
    "district": _district,
    "location": _location,
    "date": _date,
    "list": _list,
}
