"""Privacy masks and their lifts over the API (issue 12 §3, ``docs/masks.md``).

Masks: ``GET`` (``camera.read``) lists a camera's effective masks (the site
file's and the drawn ones, each with its source) and the lift in force, if
any; ``PUT`` (``mask.edit``) replaces the drawn ones (the site file's stay:
they are changed in the file). Lifts: a request (``mask.lift.request``), the
list, approval or refusal by someone else (``mask.lift.approve``), and the end.
Every change is audited in its own transaction (``csuhub.masks.lifts``,
``csuhub.store.masks``); a refusal the workflow audited itself is marked so
the failure middleware does not write it twice.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from csuhub.masks import lifts
from csuhub.masks.model import MAX_MASKS, MAX_NAME, MAX_POINTS, MaskError, parse_masks
from csuhub.masks.policy import effective_masks
from csuhub.store.audited import Entry
from csuhub.store.masks import LIFT_STATUSES
from csuhub.web.auditing import ENDED_KEY
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible, require_visible
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import (
    hub_of,
    json_body,
    json_error,
    no_body,
    path_id,
    path_slug,
    with_expect,
)
from csuhub.web.schemas import CAMERA_ID, error, json_answer
from csuhub.web.validation import MAX_ID, MAX_REASON, is_slug

routes = web.RouteTableDef()

LIFT_ID = Param(
    "lift_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    where="path",
    description="a mask lift's id",
)
_POINT = {
    "type": "array",
    "items": {"type": "number", "minimum": 0, "maximum": 1},
    "minItems": 2,
    "maxItems": 2,
}
POLYGON = {"type": "array", "items": _POINT, "minItems": 3, "maxItems": MAX_POINTS}
MASKS_BODY = {
    "type": "object",
    "required": ["masks"],
    "additionalProperties": False,
    "properties": {
        "masks": {
            "type": "array",
            "maxItems": MAX_MASKS,
            "items": {
                "type": "object",
                "required": ["polygon"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                    "polygon": POLYGON,
                },
            },
        }
    },
}
LIFT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "camera_id", "status", "requested_by"],
    "properties": {
        "id": {"type": "integer"},
        "camera_id": {"type": "string"},
        "reason": {"type": "string"},
        "requisition_id": {"type": ["integer", "null"]},
        "status": {"enum": list(LIFT_STATUSES)},
        "requested_by": {"type": "string"},
        "requested_at": {"type": "number"},
        "duration_s": {"type": "number"},
        "decided_by": {"type": ["string", "null"]},
        "decided_at": {"type": ["number", "null"]},
        "expires_at": {"type": ["number", "null"]},
        "ended_at": {"type": ["number", "null"]},
    },
}
MASKS_ANSWER = {
    "type": "object",
    "required": ["camera_id", "masks", "lift"],
    "properties": {
        "camera_id": {"type": "string"},
        "masks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "polygon", "source"],
                "properties": {
                    "name": {"type": "string"},
                    "polygon": POLYGON,
                    "source": {"enum": ["site", "api"]},
                },
            },
        },
        "lift": {"oneOf": [LIFT, {"type": "null"}]},
    },
}
LIFT_BODY = {
    "type": "object",
    "required": ["reason"],
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
        "requisition_id": {"type": ["integer", "null"], "minimum": 1},
        "duration": {
            "type": "number",
            "minimum": lifts.MIN_DURATION,
            "maximum": lifts.MAX_DURATION,
            "default": lifts.DEFAULT_DURATION,
        },
    },
}
DECISION_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": {"type": "string", "maxLength": MAX_REASON}},
}
#: the most lifts one list answers with, newest first
MAX_LIFTS = 200
_STATUS = {
    "invalid": web.HTTPBadRequest,
    "not_found": web.HTTPNotFound,
    "forbidden": web.HTTPForbidden,
    "conflict": web.HTTPConflict,
}


def install(app: web.Application) -> None:
    """The mask routes (the lift expiry sweep runs with the hub:
    ``csuhub.security.lifespan``)."""
    app.router.add_routes(with_expect(routes))


async def _camera(request: web.Request) -> str:
    """The path's camera, known to the hub (site file or register), else 404."""
    hub = hub_of(request)
    camera_id = path_slug(request, "camera_id", "camera")
    declared = any(c.id == camera_id for c in hub.config.settings.cameras)
    if not declared and await hub.store.get_camera(camera_id) is None:
        raise json_error("no such camera", web.HTTPNotFound)
    return camera_id


def _refused(request: web.Request, err: lifts.LiftError) -> web.HTTPException:
    if err.kind in ("forbidden", "conflict"):  # the workflow audited these itself
        request[ENDED_KEY] = True
    extra = {"field": err.field} if err.field else {}
    return json_error(str(err), _STATUS.get(err.kind, web.HTTPBadRequest), **extra)


async def _masks_answer(request: web.Request, camera_id: str) -> dict[str, Any]:
    hub = hub_of(request)
    masks = await effective_masks(hub, camera_id)
    lift = await lifts.in_force(hub.store, camera_id)
    return {
        "camera_id": camera_id,
        "masks": [m.as_dict() for m in masks],
        "lift": lifts.public_view(lift) if lift else None,
    }


@routes.get("/api/cameras/{camera_id}/masks")
@endpoint(
    "camera.read",
    camera="camera_id",
    tags=("masks",),
    params=(CAMERA_ID,),
    responses={200: json_answer("The camera's masks and the lift in force", MASKS_ANSWER)},
)
async def get_masks(request: web.Request) -> web.Response:
    """A camera's privacy masks (site file and drawn), and the picture lift in force."""
    camera_id = await _camera(request)
    return web.json_response(await _masks_answer(request, camera_id))


@routes.put("/api/cameras/{camera_id}/masks")
@endpoint(
    "mask.edit",
    camera="camera_id",
    tags=("masks",),
    audited="mask.edit",
    params=(CAMERA_ID,),
    body=MASKS_BODY,
    body_required=True,
    responses={
        200: json_answer("The camera's masks now", MASKS_ANSWER),
        400: error("A mask is refused (the field says which)"),
    },
)
async def put_masks(request: web.Request) -> web.Response:
    """Replace the camera's drawn masks (the site file's stay); ``[]`` removes them."""
    camera_id = await _camera(request)
    try:
        masks = parse_masks(await json_body(request))
    except MaskError as err:
        raise json_error(str(err), field=err.field) from None
    who = request[PRINCIPAL_KEY]
    params = {"masks": [{"name": n, "polygon": [list(p) for p in poly]} for n, poly in masks]}
    entry = Entry(who, "mask.edit", camera_id, params)
    await hub_of(request).store.masks.replace(camera_id, masks, who.name, time.time(), entry)
    request[ENDED_KEY] = True
    return web.json_response(await _masks_answer(request, camera_id))


@routes.post("/api/cameras/{camera_id}/mask-lifts")
@endpoint(
    "mask.lift.request",
    camera="camera_id",
    tags=("masks",),
    audited="mask.lift.request",
    params=(CAMERA_ID,),
    body=LIFT_BODY,
    body_required=True,
    responses={
        201: json_answer("The request, waiting for another user's approval", LIFT),
        400: error("The request is refused (the field says which)"),
    },
)
async def request_lift(request: web.Request) -> web.Response:
    """Ask for the camera's masks to be lifted, with a reason, for a while (15 min by
    default); another user with ``mask.lift.approve`` must approve it."""
    camera_id = await _camera(request)
    body = await json_body(request)
    try:
        lift = await lifts.request_lift(
            hub_of(request).store, request[PRINCIPAL_KEY], camera_id, body
        )
    except lifts.LiftError as err:
        raise _refused(request, err) from None
    request[ENDED_KEY] = True
    return web.json_response(lifts.public_view(lift), status=201)


@routes.get("/api/mask-lifts")
@endpoint(
    "mask.lift.request",
    tags=("masks",),
    params=(
        Param("status", {"enum": list(LIFT_STATUSES)}, description="only lifts in this state"),
        Param("camera", CAMERA_ID.schema, description="only this camera's lifts"),
    ),
    responses={
        200: json_answer(
            f"Lifts on the cameras in the caller's scope, newest first (at most {MAX_LIFTS})",
            {
                "type": "object",
                "required": ["lifts"],
                "properties": {"lifts": {"type": "array", "items": LIFT}},
            },
        ),
        400: error("A query parameter is refused"),
    },
)
async def list_lifts(request: web.Request) -> web.Response:
    """Mask lifts (pending ones to approve, those in force, past ones)."""
    status = request.query.get("status")
    camera = request.query.get("camera")
    if status is not None and status not in LIFT_STATUSES:
        raise json_error(f"status is one of {', '.join(LIFT_STATUSES)}", field="status")
    if camera is not None and not is_slug(camera):
        raise json_error("camera is a camera id", field="camera")
    return web.json_response({"lifts": await visible_lifts(request, camera, status)})


async def visible_lifts(
    request: web.Request, camera: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """The newest lifts (of ``camera``, in ``status``) on cameras in the
    principal's scope, expired ones marked so first; as the API shows them."""
    store = hub_of(request).store
    await lifts.expire(store)
    cameras = [camera] if camera is not None else await store.masks.lift_cameras()
    if camera is None and request[PRINCIPAL_KEY].scope.everything:
        in_scope = None  # every camera: no filter
    else:  # the scope before the limit, so a district's newest are never crowded out
        in_scope = [c for c in cameras if await camera_visible(request, c)]
    found = await store.masks.lifts(in_scope, (status,) if status else (), MAX_LIFTS)
    return [lifts.public_view(lift) for lift in found]


async def _decide(request: web.Request, approve: bool) -> web.Response:
    store = hub_of(request).store
    lift_id = path_id(request, "lift_id", "mask lift")
    try:
        reason = lifts.parse_decision(await json_body(request, empty_ok=True))
    except lifts.LiftError as err:
        raise _refused(request, err) from None
    await _visible_lift(request, lift_id)
    try:
        lift = await lifts.decide(store, request[PRINCIPAL_KEY], lift_id, approve, reason=reason)
    except lifts.LiftError as err:
        raise _refused(request, err) from None
    request[ENDED_KEY] = True
    return web.json_response(lifts.public_view(lift))


async def _visible_lift(request: web.Request, lift_id: int) -> dict[str, Any]:
    """The lift, if its camera is in the caller's scope (else 404, as for none)."""
    found = await hub_of(request).store.masks.lift(lift_id)
    if found is None:
        raise json_error("no such mask lift", web.HTTPNotFound)
    await require_visible(request, found["camera_id"])
    return found


_DECISION = {
    "tags": ("masks",),
    "params": (LIFT_ID,),
    "body": DECISION_BODY,
    "responses": {
        200: json_answer("The lift as decided", LIFT),
        403: error("The requester cannot decide their own request"),
        404: error("No such lift (or not in the caller's scope)"),
        409: error("The lift is no longer pending"),
    },
}


@routes.post("/api/mask-lifts/{lift_id}/approve")
@endpoint("mask.lift.approve", audited="mask.lift.approve", **_DECISION)  # type: ignore[arg-type]
async def approve_lift(request: web.Request) -> web.Response:
    """Approve another user's lift request: it runs from now for its duration."""
    return await _decide(request, True)


@routes.post("/api/mask-lifts/{lift_id}/refuse")
@endpoint("mask.lift.approve", audited="mask.lift.refuse", **_DECISION)  # type: ignore[arg-type]
async def refuse_lift(request: web.Request) -> web.Response:
    """Refuse another user's lift request."""
    return await _decide(request, False)


@routes.post("/api/mask-lifts/{lift_id}/end")
@endpoint(
    "mask.lift.request",
    tags=("masks",),
    audited="mask.lift.end",
    params=(LIFT_ID,),
    responses={
        200: json_answer("The lift, ended (or the request, withdrawn)", LIFT),
        403: error("Only its requester, its approver or an approver ends a lift"),
        404: error("No such lift (or not in the caller's scope)"),
        409: error("The lift is not pending or in force"),
    },
)
async def end_lift(request: web.Request) -> web.Response:
    """End a lift before its time (or withdraw a pending request): masked again at once."""
    store = hub_of(request).store
    lift_id = path_id(request, "lift_id", "mask lift")
    await no_body(request)
    await _visible_lift(request, lift_id)
    try:
        lift = await lifts.end_lift(store, request[PRINCIPAL_KEY], lift_id)
    except lifts.LiftError as err:
        raise _refused(request, err) from None
    request[ENDED_KEY] = True
    return web.json_response(lifts.public_view(lift))
