"""The panel's incidents pages and the logbook page (see docs/panel.md).

The board and an incident's page read the incidents as ``GET /api/incidents``
shows them (:func:`csuhub.web.incidents.incidents_view`: the caller's number masked
without ``incident.caller.view``, cameras out of scope left out); the logbook
page reads a day as ``GET /api/logbook`` does (the same scope and masking).
Their modules act through the JSON API (notes, bookmarks, close, logbook
notes) and follow ``incident.*`` over ``/api/events``; to show a change they
fetch this page again and swap its parts, so the HTML is written once, here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from csuhub.incidents import parse
from csuhub.logbook.day import DayError, parse_day, today
from csuhub.logbook.journal import MAX_NOTE, read_day
from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, language, page
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.declare import Param, endpoint
from csuhub.web.incidents import INCIDENT_ID, incidents_view
from csuhub.web.logbook import logbook_scope
from csuhub.web.requests import hub_of, json_error, path_id

routes = web.RouteTableDef()

PAGE = {200: ("The page", HTML, None)}
#: how far back the board's "recent" list of closed incidents goes
RECENT = 24 * 3600
#: at most this many incidents in each list of the board
BOARD_LIMIT = 100


def chosen_day(query: Mapping[str, str], tz: str, now: float | None = None) -> tuple[dt.date, str]:
    """The logbook page's day: ``?day=YYYY-MM-DD``, else today where the hub is.
    A day refused is today, with the reason to show (the page still answers)."""
    text = query.get("day")
    if not text:
        return today(tz, now), ""
    try:
        return parse_day(text), ""
    except DayError as err:
        return today(tz, now), str(err)


@routes.get("/panel/incidents")
@endpoint("incident.read", tags=("panel",), params=(LANG,), responses=PAGE)
async def board(request: web.Request) -> web.Response:
    """The board: open incidents, and those closed in the last 24 hours, with
    their nearest cameras; it follows ``incident.*`` events live."""
    desk = hub_of(request).incidents
    opened = await desk.list(status="open", limit=BOARD_LIMIT)
    closed = await desk.list(status="closed", start=time.time() - RECENT, limit=BOARD_LIMIT)
    values = {
        "opened": await incidents_view(request, opened),
        "closed": await incidents_view(request, closed),
    }
    return page(request, "incidents/board.html", values)


@routes.get("/panel/incidents/{incident_id}")
@endpoint(
    "incident.read",
    tags=("panel",),
    params=(INCIDENT_ID, LANG),
    responses={**PAGE, 404: ("No such incident", HTML, None)},
)
async def incident(request: web.Request) -> web.Response:
    """One incident: caller (masked), place, cameras, notes, bookmarks; for
    ``incident.write`` the forms to add a note or a bookmark and to close it."""
    hub = hub_of(request)
    found = await hub.incidents.get(path_id(request, "incident_id", "incident"))
    if found is None:
        raise json_error("no such incident", web.HTTPNotFound)
    (shown,) = await incidents_view(request, [found])
    zone = hub.config.settings.hub.zone
    now = dt.datetime.now(zone).replace(microsecond=0, tzinfo=None).isoformat()
    values = {
        "incident": shown,
        "now": now,
        "writer": request[PRINCIPAL_KEY].has("incident.write"),
        "max_note": parse.MAX_NOTE,
        "max_outcome": parse.MAX_OUTCOME,
    }
    return page(request, "incidents/incident.html", values)


@routes.get("/panel/logbook")
@endpoint("incident.read", tags=("panel",), params=(
    Param("day", {"type": "string"}, description="YYYY-MM-DD (default: today in the hub's zone)"),
    LANG,
), responses={
    **PAGE, 400: ("A day refused: today's logbook, saying why", HTML, None),
})  # fmt: skip
async def logbook(request: web.Request) -> web.Response:
    """The logbook (main courante) of a day, its exports, and a note to add."""
    hub = hub_of(request)
    tz = hub.config.settings.hub.timezone
    day, problem = chosen_day(request.query, tz)
    principal = request[PRINCIPAL_KEY]
    visible, requisition_cameras = logbook_scope(request)
    lang = language(request)
    book = await read_day(
        hub.store.audit_trail,
        hub.name,
        day,
        tz,
        lang=lang,
        show_callers=principal.has("incident.caller.view"),
        visible=visible,
        requisition_cameras=requisition_cameras,
    )
    values: dict[str, Any] = {
        "day": day.isoformat(),
        "problem": problem,
        "lines": book.as_dict()["lines"],
        "writer": principal.has("incident.write"),
        "book_lang": lang,
        "max_note": MAX_NOTE,
    }
    return page(request, "logbook/day.html", values, status=400 if problem else 200)
