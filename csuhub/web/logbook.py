"""The logbook over the API: a day read (JSON, the printable page, CSV), and notes.

Reading needs ``incident.read`` (the logbook is the room's operational
journal: operators, supervisors, requisition officers and the auditor read
it; a wall kiosk does not); writing a note or a correction needs
``incident.write``. Caller numbers are masked unless the reader holds
``incident.caller.view``; lines about a camera outside the reader's scope
are left out. A read is neither a line of the logbook nor audited; a note is
its own audit entry (``logbook.note`` or ``logbook.correct``).

Query parameters are parsed strictly (an unknown, repeated or malformed one is
a 400 naming it), as the ethics routes do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from csuhub.logbook.day import DayError, parse_day, today
from csuhub.logbook.journal import (
    MAX_NOTE,
    MAX_SEQ,
    NoteError,
    line_of,
    parse_note,
    read_day,
    write_note,
)
from csuhub.logbook.journal import entry_at as _entry_at
from csuhub.logbook.render import FORMATS, to_csv, to_html
from csuhub.logbook.scope import RequisitionCameras, Visible
from csuhub.logbook.sentences import LANGS
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import JSON, dumps_lenient, hub_of, json_body, json_error
from csuhub.web.schemas import ERROR, NULLABLE_TEXT, json_answer

routes = web.RouteTableDef()

PARAMS = ("day", "format", "lang")
#: the printed page loads nothing and runs nothing: its own inline style only
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def logbook_scope(request: web.Request) -> tuple[Visible | None, RequisitionCameras]:
    """The reader's camera scope (None: every camera) and how to learn a
    requisition's cameras (:mod:`csuhub.logbook.scope`)."""
    hub = hub_of(request)

    async def visible(camera_id: str) -> bool:
        return await camera_visible(request, camera_id)

    async def requisition_cameras(req_id: int) -> list[str] | None:
        found = await hub.store.requisitions.get(req_id)
        return None if found is None else [str(c) for c in found.get("cameras") or []]

    everything = request[PRINCIPAL_KEY].scope.everything
    return (None if everything else visible), requisition_cameras


class QueryError(ValueError):
    """A query parameter refused, with the message the 400 carries."""


@dataclass(frozen=True)
class LogbookQuery:
    day: dt.date
    format: str = "json"
    lang: str = "fr"


def parse_query(
    pairs: Iterable[tuple[str, str]], tz: str, now: float | None = None
) -> LogbookQuery:
    """``day`` (default: today where the hub is), ``format``, ``lang``."""
    found: dict[str, str] = {}
    for key, value in pairs:
        if key not in PARAMS:
            raise QueryError(f"unknown parameter {key[:40]!r} (allowed: {', '.join(PARAMS)})")
        if key in found:
            raise QueryError(f"{key}: given more than once")
        found[key] = value
    try:
        day = parse_day(found["day"]) if "day" in found else today(tz, now)
    except DayError as err:
        raise QueryError(f"day: {err}") from None
    fmt = found.get("format", "json")
    if fmt not in FORMATS:
        raise QueryError(f"format: one of {', '.join(FORMATS)}")
    lang = found.get("lang", "fr")
    if lang not in LANGS:
        raise QueryError(f"lang: one of {', '.join(LANGS)}")
    return LogbookQuery(day, fmt, lang)


_CORRECTION = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "time": {"type": "string"},
        "who": {"type": "string"},
        "what": {"type": "string"},
        "text": {"type": "string", "description": "the correction's own words"},
    },
}
LINE = {
    "type": "object",
    "required": ["seq", "time", "who", "action", "what", "outcome", "corrections"],
    "properties": {
        "seq": {"type": "integer", "description": "the entry's audit id: a correction cites it"},
        "ts": {"type": "number"},
        "time": {"type": "string", "description": "ISO 8601 in the hub's time zone"},
        "who": {"type": "string"},
        "role": NULLABLE_TEXT,
        "action": {"type": "string"},
        "what": {"type": "string", "description": "the sentence, in the asked language"},
        "target": NULLABLE_TEXT,
        "outcome": {"type": "string", "enum": ["started", "ok", "refused", "failed"]},
        "outcome_text": {"type": "string"},
        "reason": NULLABLE_TEXT,
        "ref": {"type": ["integer", "null"]},
        "corrects": {"type": ["integer", "null"]},
        "corrections": {"type": "array", "items": _CORRECTION},
        "params": {"type": "object", "description": "caller numbers masked"},
        "hash": NULLABLE_TEXT,
    },
}
DAY = {
    "type": "object",
    "required": ["hub", "day", "timezone", "lines", "count"],
    "properties": {
        "hub": {"type": "string"},
        "day": {"type": "string", "format": "date"},
        "timezone": {"type": "string"},
        "from": {"type": "number"},
        "to": {"type": "number"},
        "lang": {"type": "string", "enum": list(LANGS)},
        "lines": {"type": "array", "items": LINE},
        "count": {"type": "integer"},
        "last": {"type": ["object", "null"]},
    },
}
NOTE_BODY = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "text": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NOTE,
            "pattern": r"\S",
            "description": "the note; line breaks and tabs allowed, no other control character",
        },
        "corrects": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SEQ,
            "description": "the seq of the logbook line this note corrects",
        },
    },
}


@routes.get("/api/logbook")
@endpoint(
    "incident.read",
    tags=("logbook",),
    params=(
        Param(
            "day",
            {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
            description="YYYY-MM-DD, midnight to midnight in the hub's time zone (default: today)",
        ),
        Param(
            "format",
            {"type": "string", "enum": list(FORMATS)},
            description="json (default), html (the printable page) or csv",
        ),
        Param(
            "lang",
            {"type": "string", "enum": list(LANGS)},
            description="the sentences' language (default fr)",
        ),
    ),
    responses={200: json_answer("the day's logbook, oldest line first", DAY)},
    also={200: {"text/html": None, "text/csv": None}},
)
async def logbook_day(request: web.Request) -> web.Response:
    """The logbook (main courante) of a day: calls, incidents, camera failures and
    returns, exports, requisitions, mask lifts, hub start and stop, and notes."""
    hub = hub_of(request)
    tz = hub.config.settings.hub.timezone
    try:
        query = parse_query(request.query.items(), tz)
    except QueryError as err:
        raise json_error(str(err)) from None
    principal = request[PRINCIPAL_KEY]
    visible, requisition_cameras = logbook_scope(request)
    book = await read_day(
        hub.store.audit_trail,
        hub.name,
        query.day,
        tz,
        lang=query.lang,
        show_callers=principal.has("incident.caller.view"),
        visible=visible,
        requisition_cameras=requisition_cameras,
    )
    name = f"logbook-{query.day.isoformat()}"
    if query.format == "html":
        return web.Response(
            text=to_html(book, reader=principal.name),
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": PAGE_POLICY,
                "Content-Disposition": f'inline; filename="{name}.html"',
                "X-Content-Type-Options": "nosniff",
            },
        )
    if query.format == "csv":
        return web.Response(
            text=to_csv(book),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return web.json_response(book.as_dict(), dumps=dumps_lenient)


@routes.post("/api/logbook/notes")
@endpoint(
    "incident.write",
    tags=("logbook",),
    body=NOTE_BODY,
    body_required=True,
    responses={
        201: json_answer("the note, as a logbook line", LINE),
        400: ("refused (empty text, unknown field, no such entry to correct)", JSON, ERROR),
    },
    audited="logbook.note",
)
async def logbook_note(request: web.Request) -> web.Response:
    """Write a note to the logbook, or a correction of a line (``corrects``: its
    seq). Lines are never edited: a correction is a new line citing the old one."""
    hub = hub_of(request)
    try:
        text, corrects = parse_note(await json_body(request))
    except NoteError as err:
        raise json_error(str(err)) from None
    principal = request[PRINCIPAL_KEY]
    visible, requisition_cameras = logbook_scope(request)
    trail = hub.store.audit_trail
    try:
        seq = await write_note(
            trail,
            principal,
            text,
            corrects,
            visible=visible,
            requisition_cameras=requisition_cameras,
        )
    except NoteError as err:
        raise json_error(str(err)) from None
    written = await _entry_at(trail, seq)
    assert written is not None  # just written, never deleted
    line = line_of(
        written,
        hub.config.settings.hub.timezone,
        "fr",
        principal.has("incident.caller.view"),
    )
    return web.json_response(line, status=201, dumps=dumps_lenient)
