"""The screens' ``options:`` for the bundled layouts, as voluptuous schemas.

Schemas are strict (an unknown key is an error: a typo such as ``colums``
must not silently give a 2x2), with one exception on purpose: every bundled
layout accepts the wall rules' keys (``tiles``, ``radius_m``, ``hold``,
``spotlight``, ``timeout``, ``min_priority``, ``categories``). Those
belong to the screen, not to the layout, and the ``layout_for_incident``
selector may put any layout on a spotlight screen; validating them here, with
the same bounds everywhere, keeps that screen's options valid whatever layout
it shows. Numbers are taken as numbers only (a string or a boolean is an
error, and so is NaN), so ``"4"`` or ``yes`` in YAML fails at load, not on the
wall.
"""

from __future__ import annotations

import math
from typing import Any

import voluptuous as vol

from csuhub.api import cv

from .geometry import MAX_SIDE, ONE_PLUS

#: a carousel tile's dwell bounds, as TileSource checks them
DWELL_MIN, DWELL_MAX = 1.0, 3600.0
#: most incident cameras a spotlight shows
SPOTLIGHT_MAX = 9


def integer(low: int, high: int, what: str) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"{what} must be a whole number from {low} to {high}")
        if not low <= value <= high:
            raise vol.Invalid(f"{what} must be from {low} to {high}, not {value}")
        return value

    return check


def number(low: float, high: float, what: str) -> Any:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid(f"{what} must be a number from {low:g} to {high:g}")
        value = float(value)
        if not (math.isfinite(value) and low <= value <= high):
            raise vol.Invalid(f"{what} must be from {low:g} to {high:g}, not {value:g}")
        return value

    return check


def duration(low: float, high: float, what: str) -> Any:
    def check(value: Any) -> float:
        seconds = cv.duration(value)
        if not low <= seconds <= high:
            raise vol.Invalid(f"{what} must be from {low:g} s to {high:g} s, not {seconds:g} s")
        return seconds

    return check


def merged(*parts: dict[Any, Any]) -> dict[Any, Any]:
    """Schema keys, later parts overriding earlier ones. A voluptuous marker is
    equal to its bare key, so a plain ``{**a, **b}`` would keep ``a``'s marker
    (and lose ``b``'s default); the old key is dropped first."""
    out: dict[Any, Any] = {}
    for part in parts:
        for key, value in part.items():
            out.pop(key, None)
            out[key] = value
    return out


STREAM = vol.In(("sub", "main"), msg="stream is 'sub' or 'main'")
DWELL = duration(DWELL_MIN, DWELL_MAX, "dwell")


def boolean(what: str) -> Any:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise vol.Invalid(f"{what} must be true or false")
        return value

    return check


#: the wall rules' keys (see the module docstring); no defaults: absent stays absent.
#: ``spotlight``, ``timeout``, ``min_priority`` and ``categories`` are read by the
#: wall manager only (csuhub.walls.model)
RULES: dict[Any, Any] = {
    vol.Optional("tiles"): integer(1, SPOTLIGHT_MAX, "tiles"),
    vol.Optional("radius_m"): number(25, 3000, "radius_m"),
    vol.Optional("hold"): duration(0, 3600, "hold"),
    vol.Optional("spotlight"): boolean("spotlight"),
    vol.Optional("timeout"): duration(0, 86400, "timeout"),
    vol.Optional("min_priority"): vol.In(
        ("low", "normal", "high", "critical"),
        msg="min_priority is low, normal, high or critical",
    ),
    vol.Optional("categories"): vol.All(
        [vol.All(str, vol.Length(min=1, max=64))], vol.Length(min=1, max=32)
    ),
}

#: a snapshot tile's refresh bounds, as TileSource checks them
REFRESH_MIN, REFRESH_MAX = 1.0, 3600.0

#: what every layout showing tiles of equal size takes
_COMMON: dict[Any, Any] = {
    vol.Optional("dwell"): DWELL,
    vol.Optional("stream", default="sub"): STREAM,
    vol.Optional("snapshot"): duration(REFRESH_MIN, REFRESH_MAX, "snapshot"),
    **RULES,
}

_GRID: dict[Any, Any] = {
    vol.Optional("columns"): integer(1, MAX_SIDE, "columns"),
    vol.Optional("rows"): integer(1, MAX_SIDE, "rows"),
}

GRID_SCHEMA = vol.Schema(merged(_GRID, _COMMON))

CAROUSEL_SCHEMA = vol.Schema(
    merged(
        _COMMON,
        {
            vol.Optional("columns", default=1): integer(1, MAX_SIDE, "columns"),
            vol.Optional("rows", default=1): integer(1, MAX_SIDE, "rows"),
            vol.Optional("dwell", default=10.0): DWELL,
        },
    )
)


def one_plus_schema(n: int | None) -> vol.Schema:
    """``n`` fixed by the layout's name (``one_plus_5``), or an option (``one_plus_n``)."""
    keys = merged(_COMMON, {vol.Optional("big_stream"): STREAM})
    if n is None:
        keys[vol.Optional("n", default=ONE_PLUS[0])] = vol.In(
            ONE_PLUS, msg=f"n is one of {', '.join(map(str, ONE_PLUS))}"
        )
    return vol.Schema(keys)


SPOTLIGHT_SCHEMA = vol.Schema(
    merged(
        # columns/rows/dwell arrange the idle cameras (a grid), so a screen of the
        # grid blueprint can switch to the spotlight and keep its options
        _GRID,
        _COMMON,
        {
            vol.Optional("big_stream"): STREAM,
            vol.Optional("tiles", default=4): integer(1, SPOTLIGHT_MAX, "tiles"),
            vol.Optional("radius_m", default=300.0): number(25, 3000, "radius_m"),
            vol.Optional("hold", default=120.0): duration(0, 3600, "hold"),
        },
    )
)
