"""The ethics committee's routes: the figures, and the audit searched or exported.

All need ``audit.read`` (the auditor role: numbers and the trail, never an
image). Query parameters are parsed strictly: an unknown, repeated or
malformed parameter is a 400 naming it, never ignored, so a typo cannot
silently widen or narrow what the committee is shown.

Reading the trail is itself audited (``audit.search``, ``audit.export``, with
the query): who read or downloaded which part of it is on record, as any
other access to personal data. The figures, numbers only, are not.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from csuhub.audit.ethics import figures
from csuhub.audit.export import write_csv
from csuhub.timeutil import TimeError, parse_time
from csuhub.web.auditing import ended, entry, started
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import dumps_lenient, hub_of, json_error
from csuhub.web.schemas import ANY_OBJECT, JSON, TIME_TEXT, time_param

routes = web.RouteTableDef()

DEFAULT_PERIOD = 30 * 86400.0
EXPORT_PAGE = 5000
MAX_LIMIT = 10_000
_LIMIT = re.compile(r"^[0-9]{1,5}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 200


class QueryError(ValueError):
    """A query parameter the route refuses, with the message the 400 carries."""


@dataclass(frozen=True)
class AuditQuery:
    start: float | None
    end: float | None
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    limit: int = 100


SUMMARY_PARAMS = ("from", "to")
AUDIT_PARAMS = ("from", "to", "action", "actor", "target", "limit")
EXPORT_PARAMS = ("from", "to")


def _single(pairs: Iterable[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise QueryError(f"unknown parameter {key[:40]!r} (allowed: {', '.join(allowed)})")
        if key in found:
            raise QueryError(f"{key}: given more than once")
        found[key] = value
    return found


def _time(found: dict[str, str], key: str, tz: str) -> float | None:
    if key not in found:
        return None
    try:
        return parse_time(found[key], tz)
    except TimeError as err:
        raise QueryError(f"{key}: {err}") from None


def _period(found: dict[str, str], tz: str) -> tuple[float | None, float | None]:
    start, end = _time(found, "from", tz), _time(found, "to", tz)
    if start is not None and end is not None and end <= start:
        raise QueryError("to: must be after from")
    return start, end


def parse_summary(pairs: Iterable[tuple[str, str]], tz: str, now: float) -> tuple[float, float]:
    """``from`` and ``to``; without them, the 30 days up to now."""
    start, end = _period(_single(pairs, SUMMARY_PARAMS), tz)
    end = now if end is None else end
    start = end - DEFAULT_PERIOD if start is None else start
    if end <= start:
        raise QueryError("to: must be after from")
    return start, end


def _text(found: dict[str, str], key: str) -> str | None:
    value = found.get(key)
    if value is None:
        return None
    if not value or len(value) > MAX_TEXT or _CONTROL.search(value):
        raise QueryError(f"{key}: 1 to {MAX_TEXT} printable characters")
    return value


def parse_audit(pairs: Iterable[tuple[str, str]], tz: str) -> AuditQuery:
    found = _single(pairs, AUDIT_PARAMS)
    start, end = _period(found, tz)
    limit = 100
    if "limit" in found:
        text = found["limit"]
        if not _LIMIT.match(text) or not 1 <= int(text) <= MAX_LIMIT:
            raise QueryError(f"limit: a whole number from 1 to {MAX_LIMIT}")
        limit = int(text)
    return AuditQuery(
        start, end, _text(found, "action"), _text(found, "actor"), _text(found, "target"), limit
    )


def parse_export(pairs: Iterable[tuple[str, str]], tz: str) -> tuple[float, float]:
    """Both ends required: an export is of a stated period."""
    found = _single(pairs, EXPORT_PARAMS)
    start, end = _period(found, tz)
    if start is None or end is None:
        raise QueryError(f"{'from' if start is None else 'to'}: required")
    return start, end


def _tz(request: web.Request) -> str:
    return str(hub_of(request).config.hub["timezone"])


_TEXT_PARAM = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}


@routes.get("/api/ethics/summary")
@endpoint(
    "audit.read",
    tags=("ethics",),
    params=(
        time_param("from", "start of the period (default: 30 days before `to`)"),
        time_param("to", "end of the period, excluded (default: now)"),
    ),
    responses={200: ("the figures of the period", JSON, ANY_OBJECT)},
)
async def ethics_summary(request: web.Request) -> web.Response:
    """The ethics committee's figures: requisitions, exports, playback, mask lifts,
    cameras per district, retention compliance. Numbers only, never footage."""
    hub = hub_of(request)
    now = time.time()
    try:
        start, end = parse_summary(request.query.items(), _tz(request), now)
    except QueryError as err:
        raise json_error(str(err)) from None
    cap = float(hub.retention.cap()[0])
    data = await hub.store.call(figures, start, end, cap, now)
    return web.json_response(data, dumps=dumps_lenient)


@routes.get("/api/audit")
@endpoint(
    "audit.read",
    tags=("ethics",),
    audited="audit.search",
    params=(
        time_param("from", "entries written at or after this time"),
        time_param("to", "entries written before this time"),
        Param("action", _TEXT_PARAM, description="exact action, e.g. recording.view"),
        Param("actor", _TEXT_PARAM, description="exact user or service name"),
        Param("target", _TEXT_PARAM, description="exact object, e.g. a camera id"),
        Param(
            "limit",
            {"type": "string", "pattern": r"^[0-9]{1,5}$"},
            description=f"newest entries returned, 1 to {MAX_LIMIT} (default 100)",
        ),
    ),
    responses={200: ("the entries, newest first, with their hashes", JSON, ANY_OBJECT)},
)
async def audit_search(request: web.Request) -> web.Response:
    """Search the audit trail: the newest matching entries, with their hashes."""
    try:
        query = parse_audit(request.query.items(), _tz(request))
    except QueryError as err:
        raise json_error(str(err)) from None
    await entry(
        request,
        "audit.search",
        None,
        start=query.start,
        end=query.end,
        filters={"action": query.action, "actor": query.actor, "target": query.target},
        limit=query.limit,
    )
    entries = await hub_of(request).store.audit_trail.entries(
        query.start,
        query.end,
        action=query.action,
        actor=query.actor,
        target=query.target,
        limit=query.limit,
        newest_first=True,
    )
    return web.json_response({"entries": entries, "count": len(entries)}, dumps=dumps_lenient)


@routes.get("/api/audit/export")
@endpoint(
    "audit.read",
    tags=("ethics",),
    audited="audit.export",
    params=(
        Param("from", TIME_TEXT, required=True, description="start of the period"),
        Param("to", TIME_TEXT, required=True, description="end of the period, excluded"),
    ),
    responses={200: ("CSV, in id order, with the hash columns (docs/audit.md)", "text/csv", None)},
)
async def audit_export(request: web.Request) -> web.StreamResponse:
    """The audit of a period as CSV for the ethics committee, streamed page by page."""
    try:
        start, end = parse_export(request.query.items(), _tz(request))
    except QueryError as err:
        raise json_error(str(err)) from None
    await started(request, "audit.export", None, start=start, end=end)
    trail = hub_of(request).store.audit_trail
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="audit.csv"',
        }
    )
    await response.prepare(request)
    after: int | None = None
    header = True
    rows = 0
    while True:
        page = await trail.entries(start, end, after=after, limit=EXPORT_PAGE)
        buffer = io.StringIO()
        write_csv(page, buffer)
        text = buffer.getvalue()
        await response.write((text if header else text.split("\n", 1)[1]).encode("utf-8"))
        header = False
        rows += len(page)
        if len(page) < EXPORT_PAGE:
            break
        after = page[-1]["id"]
    await ended(request, "audit.export", None, "ok", rows=rows)
    await response.write_eof()
    return response
