"""The body a dispatch system posts, read strictly into a ``CallReport``.

Strict because a CAD integration is written once and then runs unattended for
years: a misspelt key silently ignored (``adress``) is an incident with no
location that nobody notices. So an unknown key is refused with its name, a
key given twice is refused (which of the two a parser keeps varies), and
numbers must be finite. Only :class:`CallRefused` (400) leaves this module,
whatever the bytes; the line has checked the signature before.

The body::

    {"external_id": "2026-000123",            # required, 1..256 characters
     "caller": "+33 6 12 34 56 78",           # optional (null: withheld), <= 64
     "location": {"lat": 50.6366, "lon": 3.0635, "radius_m": 30,
                  "address": "Place du Général de Gaulle, Lille"},  # lat+lon and/or address
     "category": "rixe",                      # <= 64, default "call"
     "priority": "high",                      # low|normal|high|critical, default normal
     "text": "deux individus ...",            # <= 4000, default ""
     "occurred_at": "2026-11-25T14:02:00+01:00"}  # ISO 8601 with offset, or epoch seconds
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime
from typing import Any

from csuhub.api import CallRefused, CallReport, CallState, Location, Priority

MAX_CALL_ID = 256
MAX_CALLER = 64
MAX_CATEGORY = 64
MAX_TEXT = 4000
MAX_ADDRESS = 500
#: metres: a larger uncertainty locates nothing a camera could see
MAX_RADIUS = 100_000.0
#: the body is one object holding one object (location): deeper is not a call
MAX_DEPTH = 4
#: 2000-01-01T00:00:00Z: earlier is a CAD clock or unit error, not a call
EARLIEST = 946_684_800.0

KEYS = ("external_id", "caller", "location", "category", "priority", "text", "occurred_at")
LOCATION_KEYS = ("lat", "lon", "radius_m", "address")
PRIORITIES = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH,
              "critical": Priority.CRITICAL}  # fmt: skip

#: characters no field may hold: controls (a tab and a newline are allowed in
#: ``text``), format characters (bidirectional overrides that reorder what an
#: operator reads), surrogates, private use, unassigned, line/paragraph separators
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BRACKETS = re.compile(r'[\[\]{}"\\]')


def refuse(reason: str) -> CallRefused:
    return CallRefused(400, reason)


def shown(value: object, limit: int = 60) -> str:
    """A client's key or value as it may appear in an answer or a log line:
    ASCII-escaped (no control or bidi character reaches a terminal), bounded."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_call(body: bytes, *, line: str, now: float, max_future: float) -> CallReport:
    """The report of ``body``; ``now`` is the default time of the call, and a
    call may not claim to have happened more than ``max_future`` after it."""
    data = _loads(body)
    if not isinstance(data, dict):
        raise refuse("the body must be a JSON object")
    for key in data:
        if key not in KEYS:
            raise refuse(f"unknown key {shown(key)}; the keys are {', '.join(KEYS)}")
    if "external_id" not in data:
        raise refuse("external_id is required")
    call_id = _text(data["external_id"], "external_id", MAX_CALL_ID)
    if not call_id.strip():
        raise refuse("external_id must not be blank")
    caller = data.get("caller")
    if caller is not None:
        caller = _text(caller, "caller", MAX_CALLER)
    category = _text(data.get("category", "call"), "category", MAX_CATEGORY)
    priority_name = data.get("priority", "normal")
    if not isinstance(priority_name, str) or priority_name not in PRIORITIES:
        raise refuse(f"priority must be one of {', '.join(PRIORITIES)}")
    text = _text(data.get("text", ""), "text", MAX_TEXT, multiline=True, empty=True)
    received_at = _when(data.get("occurred_at"), now, max_future)
    location = _location(data.get("location"))
    try:
        return CallReport(
            line=line,
            call_id=call_id,
            state=CallState.DISPATCHED,
            caller=caller,
            location=location,
            category=category,
            priority=PRIORITIES[priority_name],
            text=text,
            received_at=received_at,
        )
    except (TypeError, ValueError) as err:  # the report's own checks, as a 400
        raise refuse(str(err)) from None


def _loads(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("the body is not UTF-8") from None
    if _depth(text) > MAX_DEPTH:
        raise refuse(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_integer,
        )
    except CallRefused:
        raise
    except (ValueError, RecursionError) as err:  # JSONDecodeError among them
        raise refuse(f"the body is not valid JSON ({str(err)[:100]})") from None
    _no_surrogates(data)
    return data


def _depth(text: str) -> int:
    """Bracket nesting outside strings, in one pass (no recursion)."""
    depth = deepest = 0
    in_string = False
    skip_at = -1
    for match in _BRACKETS.finditer(text):
        ch, at = match.group(), match.start()
        if in_string:
            if at == skip_at:
                continue
            if ch == "\\":
                skip_at = at + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise refuse(f"key {shown(key)} is given twice")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise refuse(f"{name} is not a number (only finite numbers are accepted)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise refuse(f"{shown(text, 40)} is out of range (only finite numbers are accepted)")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise refuse(f"{shown(text, 40)} is out of range")
    return int(text)


def _no_surrogates(data: Any) -> None:
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise refuse("the JSON holds a lone surrogate, not text") from None
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _text(
    value: Any, what: str, limit: int, *, multiline: bool = False, empty: bool = False
) -> str:
    if not isinstance(value, str):
        raise refuse(f"{what} must be a string, not {_kind(value)}")
    if multiline:
        value = value.replace("\r\n", "\n")  # a Windows CAD's line ends
    if not empty and not value:
        raise refuse(f"{what} must not be empty")
    if len(value) > limit:
        raise refuse(f"{what} is longer than {limit} characters")
    for ch in value:
        if multiline and ch in "\t\n":
            continue
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise refuse(f"{what} holds the control or format character {shown(ch)}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(f"{what} must be a number, not {_kind(value)}")
    return float(value)


def _location(value: Any) -> Location | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise refuse(f"location must be an object, not {_kind(value)}")
    for key in value:
        if key not in LOCATION_KEYS:
            raise refuse(
                f"unknown key location.{shown(key)}; the keys are {', '.join(LOCATION_KEYS)}"
            )
    lat, lon, radius, address = (value.get(k) for k in LOCATION_KEYS)
    if (lat is None) != (lon is None):
        raise refuse("location needs both lat and lon, or neither")
    if lat is not None:
        lat, lon = _number(lat, "location.lat"), _number(lon, "location.lon")
        if not -90.0 <= lat <= 90.0:
            raise refuse("location.lat must be within [-90, 90]")
        if not -180.0 <= lon <= 180.0:
            raise refuse("location.lon must be within [-180, 180]")
    if radius is not None:
        if lat is None:
            raise refuse("location.radius_m is the uncertainty around lat/lon, which are missing")
        radius = _number(radius, "location.radius_m")
        if not 0.0 <= radius <= MAX_RADIUS:
            raise refuse(f"location.radius_m must be within [0, {MAX_RADIUS:g}] metres")
    if address is not None:
        address = _text(address, "location.address", MAX_ADDRESS)
        if not address.strip():
            raise refuse("location.address must not be blank")
    if lat is None and address is None:
        raise refuse("location needs lat and lon, or an address (or both)")
    return Location(lat=lat, lon=lon, radius_m=radius, address=address)


def _when(value: Any, now: float, max_future: float) -> float:
    """Epoch seconds of ``occurred_at``: ISO 8601 with an offset (``Z`` or
    ``+01:00``; a time without one is refused rather than guessed in some
    zone), or a number of epoch seconds; absent or null: ``now``."""
    if value is None:
        return now
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise refuse("occurred_at is not an ISO 8601 time") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise refuse("occurred_at needs a UTC offset (Z or +01:00): local times are ambiguous")
        try:
            when = moment.timestamp()
        except (OverflowError, OSError, ValueError):
            raise refuse("occurred_at is out of range") from None
    else:
        when = _number(value, "occurred_at")
    if not EARLIEST <= when <= now + max_future:
        raise refuse("occurred_at is before 2000 or in the future")
    return when


_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
          type(None): "null", int: "a number", float: "a number"}  # fmt: skip


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), "a value")
