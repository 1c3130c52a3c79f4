"""Small composable validators shared by every schema (core and plugins).

Each is a plain callable that returns the cleaned value or raises
``vol.Invalid`` with a message written for an admin, not a programmer.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def slug(value: Any) -> str:
    """Identifiers used in paths, URLs and the store: lowercase, digits, ``_``, ``-``."""
    if isinstance(value, bool):
        raise vol.Invalid(
            f"{value} is a boolean here: YAML reads yes/no/on/off as true/false; "
            "put the identifier in quotes"
        )
    if not isinstance(value, str) or not _SLUG.match(value):
        raise vol.Invalid(
            f"{value!r} is not a valid identifier (lowercase letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 63 characters)"
        )
    return str(value)


def port(value: Any) -> int:
    if isinstance(value, bool):
        raise vol.Invalid("expected a port number, got a boolean")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise vol.Invalid(f"expected a port number, got {value!r}") from None
    if not 1 <= number <= 65535:
        raise vol.Invalid(f"port {number} is outside 1-65535")
    return number


def duration(value: Any) -> float:
    """``90s``, ``15m``, ``14d``, or a bare number of seconds; returns seconds."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a duration such as 90s, 15m or 14d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise vol.Invalid(f"expected a duration such as 90s, 15m or 14d, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds):
        # .nan compares false with everything: a NaN retention never expires and a
        # NaN min_retention makes max() depend on argument order
        raise vol.Invalid(f"expected a finite duration such as 90s, 15m or 14d, got {value!r}")
    if seconds < 0:
        raise vol.Invalid("a duration cannot be negative")
    return seconds


def ensure_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def stream_url(value: Any) -> str:
    """A camera stream URL: only rtsp, rtsps, http and https, with a host."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a URL")
    parts = urlsplit(value)
    if parts.scheme not in {"rtsp", "rtsps", "http", "https"}:
        raise vol.Invalid(f"URL scheme {parts.scheme!r} not allowed (rtsp, rtsps, http, https)")
    if not parts.hostname:
        raise vol.Invalid("URL has no host")
    if any(ch in value for ch in "\r\n\t ") or value.startswith("-"):
        raise vol.Invalid("URL contains whitespace or control characters")
    return value


def latitude(value: Any) -> float:
    number = vol.Coerce(float)(value)
    if not -90 <= number <= 90:
        raise vol.Invalid(f"latitude {number} is outside -90..90")
    return float(number)


def longitude(value: Any) -> float:
    number = vol.Coerce(float)(value)
    if not -180 <= number <= 180:
        raise vol.Invalid(f"longitude {number} is outside -180..180")
    return float(number)


def host(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 253 or value.startswith("-"):
        raise vol.Invalid(f"{value!r} is not a host name or address")
    return value


def port_or_zero(value: Any) -> int:
    """A listening port; 0 asks the OS for a free one (tests, demos side by side)."""
    if value == 0 and not isinstance(value, bool):
        return 0
    return port(value)


class PartialInvalid(vol.MultipleInvalid):
    """The errors of a list's bad items, with what its good items validated to.

    ``entries[i]`` is item ``i`` validated, or None when it failed: the checks
    that follow the schema (a camera's driver options, its authorisation) still
    run on the good items, so one bad camera does not hide the others' problems.
    The section is still invalid: nothing is ever built from a partial list.
    """

    def __init__(self, errors: list[vol.Invalid], entries: list[Any]) -> None:
        super().__init__(errors)
        self.entries = entries


def each(schema: Any, unique: str | None = None, what: str = "id") -> Any:
    """Validate every item of a list, reporting the errors of *all* items.

    voluptuous stops a list at its first bad item; an admin wants them all.
    ``unique`` names a key whose values must differ between items (checked
    even when other items are invalid). The error is a ``PartialInvalid``.
    """
    compiled = vol.Schema(schema)

    def validate(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise vol.Invalid("expected a list")
        out: list[Any] = []
        errors: list[vol.Invalid] = []
        for index, item in enumerate(value):
            try:
                out.append(compiled(item))
            except vol.MultipleInvalid as err:
                out.append(None)
                errors.extend(_prefixed(e, index) for e in err.errors)
            except vol.Invalid as err:
                out.append(None)
                errors.append(_prefixed(err, index))
        if unique is not None:
            seen: set[Any] = set()
            for index, item in enumerate(value):
                key = item.get(unique) if isinstance(item, dict) else None
                if key is None or isinstance(key, dict | list):
                    continue
                if key in seen:
                    errors.append(vol.Invalid(f"duplicate {what} {key!r}", path=[index, unique]))
                seen.add(key)
        if errors:
            raise PartialInvalid(errors, out)
        return out

    validate.__csuhub_each__ = compiled  # type: ignore[attr-defined]  # for "did you mean"
    return validate


def _prefixed(err: vol.Invalid, index: int) -> vol.Invalid:
    return vol.Invalid(err.msg, path=[index, *err.path], error_message=err.error_message)


def timezone(value: Any) -> str:
    """An IANA time zone name such as ``Europe/Paris``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value:
        raise vol.Invalid("expected a time zone name such as Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise vol.Invalid(f"unknown time zone {value!r} (e.g. Europe/Paris)") from None
    return value


def date(value: Any) -> _dt.date:
    """A calendar date, ``2026-03-31`` (YAML already parses that form)."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise vol.Invalid(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def bounded_text(max_length: int = 200) -> Any:
    """Free text shown to people: a non-empty string of bounded length."""

    def validate(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise vol.Invalid("expected text")
        text = str(value).strip()
        if not text:
            raise vol.Invalid("must not be empty")
        if len(text) > max_length:
            raise vol.Invalid(f"longer than {max_length} characters")
        return text

    return validate


def polygon(value: Any) -> list[list[float]]:
    """A privacy mask: at least 3 points ``[x, y]`` in image fractions 0..1."""
    if not isinstance(value, list) or len(value) < 3:
        raise vol.Invalid("a polygon needs at least 3 points [x, y]")
    points: list[list[float]] = []
    for index, point in enumerate(value):
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
        ):
            raise vol.Invalid("each point is [x, y] with numbers", path=[index])
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise vol.Invalid(
                "coordinates are fractions of the image, between 0 and 1", path=[index]
            )
        points.append([x, y])
    return points


def path_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise vol.Invalid("expected a file system path")
    return value
