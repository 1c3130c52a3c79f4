"""What operators send about incidents (API bodies and queries, CLI options),
checked into typed values. Pure functions: every refusal is an
:class:`~csuhub.incidents.model.IncidentError` naming the field, never another
exception (hypothesis checks it: tests/test_incidents_parse.py).

Texts are bounded and printable (a newline is allowed in notes and free text,
nothing that would hide text on the wall or in an export); unknown fields are
refused, so a misspelt ``priorty`` is an error, not a silent default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from csuhub.incidents.calls import MAX_CALLER, MAX_CATEGORY, MAX_TEXT
from csuhub.incidents.model import IncidentError
from csuhub.refs import IncidentStatus, Location, Priority
from csuhub.timeutil import MAX_EPOCH, TimeError, parse_time
from csuhub.web.validation import is_slug

MAX_ADDRESS = 300
MAX_DISTRICT = 100
MAX_NOTE = 4000
MAX_OUTCOME = 200
#: the most incidents one list answers with
MAX_LIST = 500
PRIORITIES = {str(p): p for p in Priority}


@dataclass(frozen=True, slots=True)
class OpenRequest:
    category: str
    priority: Priority = Priority.NORMAL
    location: Location | None = None
    district: str | None = None
    text: str = ""
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class Query:
    status: str | None = None
    start: float | None = None
    end: float | None = None
    camera: str | None = None
    limit: int = 200


def _object(body: Any, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise IncidentError("the body is a JSON object", field="body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise IncidentError(f"unknown field {unknown[0]!r}", field=unknown[0])
    missing = sorted(required - set(body))
    if missing:
        raise IncidentError(f"{missing[0]} is required", field=missing[0])
    return body


def text(value: Any, field: str, limit: int, *, empty: bool = False, lines: bool = False) -> str:
    """A bounded printable text (``lines``: newlines and tabs allowed); surrounding
    blanks are removed."""
    if not isinstance(value, str):
        raise IncidentError(f"{field} is a string", field=field)
    cleaned = value.strip()
    if not cleaned and not empty:
        raise IncidentError(f"{field} must not be empty", field=field)
    if len(cleaned) > limit:
        raise IncidentError(f"{field} has at most {limit} characters", field=field)
    allowed = "\n\t" if lines else ""
    if any(not (c.isprintable() or c in allowed) for c in cleaned):
        raise IncidentError(f"{field} must be printable text", field=field)
    return cleaned


def _optional_text(body: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = body.get(field)
    return None if value is None else text(value, field, limit)


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IncidentError(f"{field} is a number", field=field)
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise IncidentError(f"{field} is between {low:g} and {high:g}", field=field)
    return number


def location(value: Any) -> Location | None:
    """``{"lat", "lon", "radius_m", "address"}`` (a point, an address or both), or null."""
    if value is None:
        return None
    body = _object(value, {"lat", "lon", "radius_m", "address"}, set())
    lat, lon = body.get("lat"), body.get("lon")
    if (lat is None) != (lon is None):
        raise IncidentError("a location needs both lat and lon, or neither", field="location")
    radius = body.get("radius_m")
    if radius is not None and lat is None:
        raise IncidentError("radius_m is the uncertainty around lat/lon", field="radius_m")
    address = _optional_text(body, "address", MAX_ADDRESS)
    if lat is None and address is None:
        raise IncidentError("a location has a point, an address or both", field="location")
    return Location(
        lat=None if lat is None else _number(lat, "lat", -90.0, 90.0),
        lon=None if lon is None else _number(lon, "lon", -180.0, 180.0),
        radius_m=None if radius is None else _number(radius, "radius_m", 0.0, 1e6),
        address=address,
    )


def priority(value: Any) -> Priority:
    if not isinstance(value, str) or value not in PRIORITIES:
        raise IncidentError(f"priority is one of {', '.join(PRIORITIES)}", field="priority")
    return PRIORITIES[value]


def camera(value: Any, field: str = "camera") -> str:
    if not isinstance(value, str) or not is_slug(value):
        raise IncidentError(f"{field} is a camera id", field=field)
    return value


def parse_open(body: Any) -> OpenRequest:
    """``POST /api/incidents``: an incident opened by hand."""
    fields = {"category", "priority", "location", "district", "text", "caller"}
    body = _object(body, fields, {"category"})
    return OpenRequest(
        category=text(body["category"], "category", MAX_CATEGORY),
        priority=priority(body.get("priority", "normal")),
        location=location(body.get("location")),
        district=_optional_text(body, "district", MAX_DISTRICT),
        text=text(body.get("text", ""), "text", MAX_TEXT, empty=True, lines=True),
        caller=_optional_text(body, "caller", MAX_CALLER),
    )


def parse_note(body: Any) -> str:
    """``POST /api/incidents/{id}/notes``: ``{"text": ...}``."""
    return text(_object(body, {"text"}, {"text"})["text"], "text", MAX_NOTE, lines=True)


def parse_link(body: Any) -> str:
    """``POST /api/incidents/{id}/cameras``: ``{"camera": id}``."""
    return camera(_object(body, {"camera"}, {"camera"})["camera"])


def moment(value: Any, tz: str, field: str = "time") -> float:
    """Epoch seconds, or a time as ``csuhub.timeutil.parse_time`` reads it."""
    if isinstance(value, str):
        try:
            return parse_time(value, tz)
        except TimeError as err:
            raise IncidentError(str(err), field=field) from None
    return _number(value, field, 0.0, MAX_EPOCH - 1)


def parse_bookmark(body: Any, tz: str) -> tuple[str, float, str]:
    """``POST /api/incidents/{id}/bookmarks``: ``{"camera", "time", "note"}``."""
    body = _object(body, {"camera", "time", "note"}, {"camera", "time"})
    note = text(body.get("note", ""), "note", MAX_NOTE, empty=True, lines=True)
    return camera(body["camera"]), moment(body["time"], tz), note


def parse_close(body: Any) -> str:
    """``POST /api/incidents/{id}/close``: ``{"outcome": ...}``."""
    return text(_object(body, {"outcome"}, {"outcome"})["outcome"], "outcome", MAX_OUTCOME)


def parse_query(query: Mapping[str, str], tz: str) -> Query:
    """``GET /api/incidents?status=&from=&to=&camera=&limit=``."""
    unknown = sorted(set(query) - {"status", "from", "to", "camera", "limit"})
    if unknown:
        raise IncidentError(f"unknown parameter {unknown[0]!r}", field=unknown[0])
    status = query.get("status")
    if status is not None and status not in {str(s) for s in IncidentStatus}:
        raise IncidentError("status is open or closed", field="status")
    start = None if query.get("from") is None else moment(query["from"], tz, "from")
    end = None if query.get("to") is None else moment(query["to"], tz, "to")
    if start is not None and end is not None and end <= start:
        raise IncidentError("to must be after from", field="to")
    raw_camera = query.get("camera")
    limit = query.get("limit", "200")
    if not (isinstance(limit, str) and limit.isascii() and limit.isdigit() and len(limit) < 5):
        raise IncidentError(f"limit is 1 to {MAX_LIST}", field="limit")
    if not 1 <= int(limit) <= MAX_LIST:
        raise IncidentError(f"limit is 1 to {MAX_LIST}", field="limit")
    return Query(
        status=status,
        start=start,
        end=end,
        camera=None if raw_camera is None else camera(raw_camera),
        limit=int(limit),
    )
