"""Incidents over the API (issue 13 §4, docs/incidents.md).

Reading needs ``incident.read``, acting ``incident.write``. Who sees what: an
incident is visible to every holder of ``incident.read`` (a call is the
centre's business, whatever cameras it ends up linking); the cameras and
bookmarks of cameras outside the caller's scope are left out of it, and a
list filtered by such a camera is empty. The caller's number is masked unless
the principal holds ``incident.caller.view``. Linking or bookmarking a camera
needs that camera in scope (404 otherwise, as for one that does not exist).

Every change writes its audit entry in its own transaction (the desk and
``csuhub.store.incidents``); a refused attempt is audited by the failure
middleware under the route's action.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csuhub.incidents import parse
from csuhub.incidents.calls import MAX_CALLER, MAX_CATEGORY, MAX_TEXT
from csuhub.incidents.model import Incident, IncidentError
from csuhub.web.auditing import ENDED_KEY
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import hub_of, json_body, json_error, path_id
from csuhub.web.schemas import (
    CAMERA_ID,
    EPOCH,
    NULLABLE_EPOCH,
    NULLABLE_TEXT,
    TIME_TEXT,
    TIME_VALUE,
    error,
    json_answer,
)
from csuhub.web.validation import MAX_ID

routes = web.RouteTableDef()

INCIDENT_ID = Param(
    "incident_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    where="path",
    description="an incident's id",
)
_NULLABLE_NUMBER = {"type": ["number", "null"]}
PRIORITY = {"enum": list(parse.PRIORITIES)}
LOCATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "a WGS84 point (with its uncertainty radius), an address, or both",
    "properties": {
        "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
        "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
        "radius_m": {"type": ["number", "null"], "minimum": 0, "maximum": 1e6},
        "address": {"type": ["string", "null"], "maxLength": parse.MAX_ADDRESS},
    },
}
INCIDENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", "opened_at", "source", "caller", "location", "cameras"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["open", "closed"]},
        "opened_at": EPOCH,
        "updated_at": EPOCH,
        "closed_at": NULLABLE_EPOCH,
        "received_at": EPOCH,
        "source": {
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {"enum": ["call_line", "operator", "plugin"]},
                "line": NULLABLE_TEXT,
                "call_id": NULLABLE_TEXT,
            },
        },
        "caller": {
            "type": ["string", "null"],
            "description": "masked (+33 6•• •• •• 78) unless the caller holds incident.caller.view",
        },
        "location": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "lat": _NULLABLE_NUMBER,
                        "lon": _NULLABLE_NUMBER,
                        "radius_m": _NULLABLE_NUMBER,
                        "address": NULLABLE_TEXT,
                    },
                },
                {"type": "null"},
            ]
        },
        "district": NULLABLE_TEXT,
        "category": {"type": "string"},
        "priority": PRIORITY,
        "text": {"type": "string"},
        "cameras": {
            "type": "array",
            "description": "nearest first, then those linked later; only cameras in scope",
            "items": {
                "type": "object",
                "required": ["id", "reason"],
                "properties": {
                    "id": {"type": "string"},
                    "distance_m": _NULLABLE_NUMBER,
                    "reason": {"enum": ["nearest", "district", "operator"]},
                },
            },
        },
        "bookmarks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "camera": {"type": "string"},
                    "time": EPOCH,
                    "note": {"type": "string"},
                    "by": {"type": "string"},
                    "at": EPOCH,
                },
            },
        },
        "notes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "text": {"type": "string"},
                    "by": {"type": "string"},
                    "at": EPOCH,
                },
            },
        },
        "outcome": NULLABLE_TEXT,
        "call_state": NULLABLE_TEXT,
        "opened_by": NULLABLE_TEXT,
        "closed_by": NULLABLE_TEXT,
        # the closed incident of the same call this one follows (a reused call id)
        "follows": {"type": ["integer", "null"]},
    },
}
OPEN_BODY = {
    "type": "object",
    "required": ["category"],
    "additionalProperties": False,
    "properties": {
        "category": {"type": "string", "minLength": 1, "maxLength": MAX_CATEGORY},
        "priority": {**PRIORITY, "default": "normal"},
        "location": {"oneOf": [LOCATION, {"type": "null"}]},
        "district": {"type": ["string", "null"], "maxLength": parse.MAX_DISTRICT},
        "text": {"type": "string", "maxLength": MAX_TEXT},
        "caller": {"type": ["string", "null"], "maxLength": MAX_CALLER},
    },
}
NOTE_BODY = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": parse.MAX_NOTE}},
}
LINK_BODY = {
    "type": "object",
    "required": ["camera"],
    "additionalProperties": False,
    "properties": {"camera": CAMERA_ID.schema},
}
BOOKMARK_BODY = {
    "type": "object",
    "required": ["camera", "time"],
    "additionalProperties": False,
    "properties": {
        "camera": CAMERA_ID.schema,
        "time": TIME_VALUE,
        "note": {"type": "string", "maxLength": parse.MAX_NOTE},
    },
}
CLOSE_BODY = {
    "type": "object",
    "required": ["outcome"],
    "additionalProperties": False,
    "properties": {"outcome": {"type": "string", "minLength": 1, "maxLength": parse.MAX_OUTCOME}},
}
_STATUS = {
    "invalid": web.HTTPBadRequest,
    "not_found": web.HTTPNotFound,
    "conflict": web.HTTPConflict,
}
_CHANGE = {
    400: error("The body is refused (the field says which)"),
    404: error("No such incident (or, for a camera, not one in the caller's scope)"),
    409: error("The incident is closed"),
}


def _refused(err: IncidentError) -> web.HTTPException:
    extra = {"field": err.field} if err.field else {}
    return json_error(str(err), _STATUS.get(err.kind, web.HTTPBadRequest), **extra)


async def incidents_view(request: web.Request, incidents: list[Incident]) -> list[dict[str, Any]]:
    """The incidents as this principal may see them."""
    who = request[PRINCIPAL_KEY]
    visible: set[str] | None = None
    if not who.scope.everything:
        named = {c for i in incidents for c in (*i.camera_ids, *(b.camera_id for b in i.bookmarks))}
        visible = {c for c in named if await camera_visible(request, c)}
    caller = who.has("incident.caller.view")
    return [
        i.as_dict(
            caller_visible=caller,
            camera_visible=None if visible is None else visible.__contains__,
        )
        for i in incidents
    ]


async def _answer(request: web.Request, incident: Incident, status: int = 200) -> web.Response:
    request[ENDED_KEY] = True  # the desk wrote the entry with the change
    (shown,) = await incidents_view(request, [incident])
    return web.json_response(shown, status=status)


async def _in_scope(request: web.Request, camera_id: str) -> str:
    if not await camera_visible(request, camera_id):
        raise json_error("no such camera", web.HTTPNotFound, field="camera")
    return camera_id


@routes.get("/api/incidents")
@endpoint(
    "incident.read",
    tags=("incidents",),
    params=(
        Param("status", {"enum": ["open", "closed"]}, description="only incidents in this state"),
        Param("from", TIME_TEXT, description="opened at or after"),
        Param("to", TIME_TEXT, description="opened before"),
        Param("camera", CAMERA_ID.schema, description="only incidents linked to this camera"),
        Param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": parse.MAX_LIST, "default": 200},
            description="at most this many, newest first",
        ),
    ),
    responses={
        200: json_answer(
            "Incidents, newest first",
            {
                "type": "object",
                "required": ["incidents"],
                "properties": {"incidents": {"type": "array", "items": INCIDENT}},
            },
        ),
        400: error("A query parameter is refused"),
    },
)
async def list_incidents(request: web.Request) -> web.Response:
    """Incidents, newest first, by status, opening time and linked camera."""
    hub = hub_of(request)
    try:
        query = parse.parse_query(request.query, hub.config.hub["timezone"])
    except IncidentError as err:
        raise _refused(err) from None
    if query.camera is not None and not await camera_visible(request, query.camera):
        return web.json_response({"incidents": []})
    found = await hub.incidents.list(
        status=query.status,
        start=query.start,
        end=query.end,
        camera=query.camera,
        limit=query.limit,
    )
    return web.json_response({"incidents": await incidents_view(request, found)})


@routes.post("/api/incidents")
@endpoint(
    "incident.write",
    tags=("incidents",),
    audited="incident.open",
    body=OPEN_BODY,
    body_required=True,
    responses={
        201: json_answer("The incident, with its nearest cameras linked", INCIDENT),
        400: error("The body is refused (the field says which)"),
    },
)
async def open_incident(request: web.Request) -> web.Response:
    """Open an incident by hand: its nearest online cameras (or its district's) are
    linked and their footage held from ``incidents.hold_before`` ago."""
    try:
        wanted = parse.parse_open(await json_body(request))
    except IncidentError as err:
        raise _refused(err) from None
    incident = await hub_of(request).incidents.open(
        request[PRINCIPAL_KEY],
        category=wanted.category,
        priority=wanted.priority,
        location=wanted.location,
        district=wanted.district,
        text=wanted.text,
        caller=wanted.caller,
    )
    return await _answer(request, incident, 201)


@routes.get("/api/incidents/{incident_id}")
@endpoint(
    "incident.read",
    tags=("incidents",),
    params=(INCIDENT_ID,),
    responses={200: json_answer("The incident", INCIDENT), 404: error("No such incident")},
)
async def get_incident(request: web.Request) -> web.Response:
    """One incident: its source, caller, location, cameras, bookmarks, notes, outcome."""
    incident_id = path_id(request, "incident_id", "incident")
    found = await hub_of(request).incidents.get(incident_id)
    if found is None:
        raise json_error("no such incident", web.HTTPNotFound)
    (shown,) = await incidents_view(request, [found])
    return web.json_response(shown)


def _change(action: str, body: dict[str, Any], summary: str) -> Any:
    return endpoint(
        "incident.write",
        tags=("incidents",),
        audited=action,
        params=(INCIDENT_ID,),
        body=body,
        body_required=True,
        summary=summary,
        responses={200: json_answer("The incident as it is now", INCIDENT), **_CHANGE},
    )


@routes.post("/api/incidents/{incident_id}/notes")
@_change("incident.note", NOTE_BODY, "Add a note to an open incident")
async def add_note(request: web.Request) -> web.Response:
    incident_id = path_id(request, "incident_id", "incident")
    try:
        note = parse.parse_note(await json_body(request))
        incident = await hub_of(request).incidents.note(incident_id, note, request[PRINCIPAL_KEY])
    except IncidentError as err:
        raise _refused(err) from None
    return await _answer(request, incident)


@routes.post("/api/incidents/{incident_id}/cameras")
@_change(
    "incident.camera_link",
    LINK_BODY,
    "Link a camera to an open incident by hand (its footage is held too)",
)
async def link_camera(request: web.Request) -> web.Response:
    incident_id = path_id(request, "incident_id", "incident")
    try:
        camera_id = await _in_scope(request, parse.parse_link(await json_body(request)))
        incident = await hub_of(request).incidents.link(
            incident_id, camera_id, request[PRINCIPAL_KEY]
        )
    except IncidentError as err:
        raise _refused(err) from None
    return await _answer(request, incident)


@routes.post("/api/incidents/{incident_id}/bookmarks")
@_change("incident.bookmark", BOOKMARK_BODY, "Bookmark a moment of a camera's footage")
async def add_bookmark(request: web.Request) -> web.Response:
    hub = hub_of(request)
    incident_id = path_id(request, "incident_id", "incident")
    try:
        camera_id, moment, note = parse.parse_bookmark(
            await json_body(request), hub.config.hub["timezone"]
        )
        await _in_scope(request, camera_id)
        incident = await hub.incidents.bookmark(
            incident_id, camera_id, moment, note, request[PRINCIPAL_KEY]
        )
    except IncidentError as err:
        raise _refused(err) from None
    return await _answer(request, incident)


@routes.post("/api/incidents/{incident_id}/close")
@_change(
    "incident.close",
    CLOSE_BODY,
    "Close an incident with its outcome (its footage holds are released)",
)
async def close_incident(request: web.Request) -> web.Response:
    incident_id = path_id(request, "incident_id", "incident")
    try:
        outcome = parse.parse_close(await json_body(request))
        incident = await hub_of(request).incidents.close(
            incident_id, outcome, request[PRINCIPAL_KEY]
        )
    except IncidentError as err:
        raise _refused(err) from None
    return await _answer(request, incident)
