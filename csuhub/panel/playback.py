"""The panel's playback pages (see docs/panel.md): the cameras one may play,
and one camera's timeline (segments, gaps and why, incidents, bookmarks) with
the player.

The page is rendered without a single media URL: footage is consulted only
with a stated reason (CSI L252-1: who watched what, and why), so the page asks
for it first, in a form, and only then does its module build the URLs of
``play.mp4`` and ``frame.jpg`` with that ``?reason=``; the API refuses them
without one and audits each view with it. Exports go through
``POST /api/exports`` (``csuhub.web.exports``) with their own reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, _, page, zone_of
from csuhub.recording.continuity import continuity, known_camera, recorder_of
from csuhub.timeutil import TimeError, parse_time
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import endpoint
from csuhub.web.exports import MAX_EXPORT
from csuhub.web.recordings import MAX_PLAY
from csuhub.web.requests import hub_of, path_slug
from csuhub.web.schemas import CAMERA_ID, time_param

routes = web.RouteTableDef()

#: the default span of the timeline, and the longest one it draws
DEFAULT_SPAN = 3600.0
MAX_SPAN = 24 * 3600.0
#: the timeline's drawing width (SVG user units)
WIDTH = 1000.0
#: two segments closer than this are one recorded stretch
JOIN = 1.0
#: each gap state's words (the API's states: csuhub.recording.continuity)
STATES = {
    "not_recorded": _("Not recorded"),
    "destroyed": _("Destroyed (retention)"),
    "damaged": _("Damaged"),
    "in_progress": _("Being recorded"),
    "future": _("Not yet"),
    "unknown": _("Missing"),
}
PAGE = {200: ("The page", HTML, None), 404: ("No such camera in the caller's scope", HTML, None)}


@dataclass(frozen=True, slots=True)
class Range:
    """The timeline's range, and what was wrong with the one asked for, if anything."""

    start: float
    end: float
    problem: str | None = None


def parse_range(query: Mapping[str, str], tz: str, now: float) -> Range:
    """``?from=&to=`` as the API reads times (``parse_time``); a missing end is
    now, a missing start the default span before the end. A bad or too long
    range is not an error page: the default range, and the words saying why."""
    default = Range(now - DEFAULT_SPAN, now)
    try:
        end = parse_time(query["to"][:64], tz) if query.get("to") else now
        start = parse_time(query["from"][:64], tz) if query.get("from") else end - DEFAULT_SPAN
    except TimeError:
        return Range(default.start, default.end, _("That is not a time: the last hour is shown."))
    if end <= start:
        return Range(default.start, default.end, _("The end must be after the start."))
    if end - start > MAX_SPAN:
        return Range(end - MAX_SPAN, end, _("At most 24 hours at once: the last 24 are shown."))
    return Range(start, end)


def runs(segments: list[Any], start: float, end: float) -> list[tuple[float, float]]:
    """The recorded stretches in [start, end): usable segments that follow each
    other, joined (what the player plays without a jump)."""
    out: list[list[float]] = []
    for seg in sorted((s for s in segments if s.status == "ok"), key=lambda s: s.start):
        a, b = max(seg.start, start), min(seg.end, end)
        if b <= a:
            continue
        if out and a - out[-1][1] <= JOIN:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def x_of(moment: float, start: float, end: float) -> float:
    """Where a moment sits on the drawing, clamped to it."""
    return round(min(max((moment - start) / (end - start), 0.0), 1.0) * WIDTH, 2)


def _span(a: float, b: float, start: float, end: float) -> dict[str, float]:
    x = x_of(a, start, end)
    return {"x": x, "w": max(round(x_of(b, start, end) - x, 2), 0.5), "from": a, "to": b}


def _local(moment: float, zone: ZoneInfo) -> str:
    """What the time fields show: the hub's wall-clock time, without an offset
    (``parse_time`` reads it back in the hub's zone)."""
    return datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%dT%H:%M:%S")


async def _marks(request: web.Request, camera: str, span: Range) -> tuple[list[Any], list[Any]]:
    """Incidents linked to the camera that overlap the range, and the camera's
    bookmarks in it: only for one who may read incidents. A bookmark does not
    link its camera, and is often made after the footage, so the incidents
    opened since the day before the range are read too (the 500 newest: the
    store has no query of bookmarks by camera)."""
    if not request[PRINCIPAL_KEY].has("incident.read"):
        return [], []
    desk = hub_of(request).incidents
    found = {i.id: i for i in await desk.list(camera=camera, limit=200)}
    for i in await desk.list(start=span.start - 86400, limit=500):
        found.setdefault(i.id, i)
    now = time.time()
    incidents = [
        i
        for i in found.values()
        if camera in i.camera_ids and i.hold_start < span.end and (i.closed_at or now) > span.start
    ]
    bookmarks = [
        b
        for i in found.values()
        for b in i.bookmarks
        if b.camera_id == camera and span.start <= b.time < span.end
    ]
    return sorted(incidents, key=lambda i: i.hold_start), sorted(bookmarks, key=lambda b: b.time)


@routes.get("/panel/playback")
@endpoint("playback.view", tags=("panel",), params=(LANG,), responses=PAGE)
async def playback_index(request: web.Request) -> web.Response:
    """The cameras whose footage one may play (in one's scope, with footage or
    in the register)."""
    hub = hub_of(request)
    names = {row.id: row.name for row in await hub.store.list_cameras()}
    for camera_id in await hub.store.recorded_cameras():
        names.setdefault(camera_id, camera_id)
    shown = [
        {"id": camera_id, "name": name}
        for camera_id, name in sorted(names.items())
        if await camera_visible(request, camera_id)
    ]
    return page(request, "playback/index.html", {"cameras": shown})


@routes.get("/panel/playback/{camera_id}")
@endpoint(
    "playback.view",
    camera="camera_id",
    tags=("panel",),
    params=(
        CAMERA_ID,
        time_param("from", "start of the timeline (default: an hour before 'to')"),
        time_param("to", "end of the timeline (default: now)"),
        LANG,
    ),
    responses=PAGE,
)
async def playback_camera(request: web.Request) -> web.Response:
    """One camera's timeline and player; nothing plays before a stated reason."""
    hub = hub_of(request)
    camera = path_slug(request, "camera_id", "camera")
    if not await known_camera(hub.store, camera):
        raise web.HTTPNotFound(text="no such camera")
    zone = zone_of(request)
    span = parse_range(request.query, zone.key, time.time())
    segments = await hub.store.segments(camera, span.start, span.end, limit=20_000)
    report = await continuity(
        hub.store, camera, span.start, span.end, recorder=recorder_of(hub, camera)
    )
    stretches = runs(segments, span.start, span.end)
    incidents, bookmarks = await _marks(request, camera, span)
    row = await hub.store.get_camera(camera)
    values = {
        "camera": camera,
        "camera_name": row.name if row is not None else camera,
        "span": span,
        "local_from": _local(span.start, zone),
        "local_to": _local(span.end, zone),
        "report": report,
        "states": STATES,
        "runs": [_span(a, b, span.start, span.end) for a, b in stretches],
        "runs_json": json.dumps([[a, b] for a, b in stretches]),
        "gaps": [
            {**_span(g["start"], g["end"], span.start, span.end), **g} for g in report["gaps"]
        ],
        "incidents": [
            {"incident": i, **_span(i.hold_start, i.closed_at or span.end, span.start, span.end)}
            for i in incidents
        ],
        "bookmarks": [{"mark": b, "x": x_of(b.time, span.start, span.end)} for b in bookmarks],
        "ticks": [
            {"x": x_of(t, span.start, span.end), "t": t}
            for t in (span.start + k * (span.end - span.start) / 6 for k in range(7))
        ],
        "width": WIDTH,
        "max_play": MAX_PLAY,
        "max_export": MAX_EXPORT,
        "may_export": request[PRINCIPAL_KEY].has("export.create"),
    }
    return page(request, "playback/camera.html", values)
