"""Camera and discovery endpoints. Handlers stay thin: the registry does the work.

Each route declares its permission (``camera.read``, ``live.view`` for a
snapshot, ``ptz.move``, ``camera.adopt`` for scans and adoption), its inputs
and its answers (the OpenAPI document is generated from them); lists show
only the cameras in the caller's scope. A PTZ command, a scan and an adoption
are audited when they start, with their parameters as validated, then with
their outcome; a snapshot when its image is handed out. Refused attempts are
audited too (``csuhub.web.auditing``).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from csuhub.cameras.model import AdoptionError
from csuhub.cameras.ptz import PtzMoves, PtzRequestError, has_ptz
from csuhub.cameras.ptz import validate as validate_ptz
from csuhub.masks.apply import MaskingFailed, MaskingTimeout, mask_jpeg
from csuhub.masks.policy import picture_plan, playback_plan
from csuhub.protocols import PtzUnsupported
from csuhub.store.records import CameraRow
from csuhub.web.auditing import audited_below, ended, entry, started
from csuhub.web.auth import PRINCIPAL_KEY, USER_KEY
from csuhub.web.cache import Kept, Version, request_version
from csuhub.web.declare import endpoint
from csuhub.web.requests import dumps_lenient, hub_of, json_body, json_error, path_slug
from csuhub.web.schemas import (
    ADOPT_BODY,
    CAMERA,
    CAMERA_ID,
    CAMERA_LIST,
    PTZ_BODY,
    SCAN_BODY,
    binary,
    error,
    json_answer,
)

routes = web.RouteTableDef()


def _camera_id(request: web.Request) -> str:
    return path_slug(request, "camera_id", "camera")


def _describe(row: Any, flag: tuple[bool, str]) -> dict[str, Any]:
    data = row.as_dict()
    allowed, why = flag
    data["recording_allowed"] = allowed
    data["recording_blocked_reason"] = why or None
    return data


@routes.get("/api/cameras")
@endpoint(
    "camera.read",
    tags=("cameras",),
    responses={200: json_answer("The cameras in the caller's scope", CAMERA_LIST)},
)
async def list_cameras(request: web.Request) -> web.Response:
    """The cameras in the caller's scope, with their state and whether they may record."""
    hub = hub_of(request)
    scope = request[PRINCIPAL_KEY].scope
    settings = hub.config.settings
    version = await request_version(request, hub.store)
    kept = _kept(hub)
    if version is not None:
        found = kept.lists.get(scope, version)
        # the site file (districts, groups) and the recorders' flags as they are now
        if found is not None and found.settings is settings:
            if _flags(hub, found.rows) == found.flags:
                return _json_bytes(found.body)
    rows = tuple(r for r in await _register(hub, version) if row_in_scope(hub, request, r))
    flags = _flags(hub, rows)
    data = {"cameras": [_describe(r, flag) for r, flag in zip(rows, flags, strict=True)]}
    body = json.dumps(data).encode()
    if version is not None:
        kept.lists.put(scope, version, _Listing(settings, rows, flags, body), len(body))
    return _json_bytes(body)


@dataclass(frozen=True, slots=True)
class _Listing:
    """One scope's camera list as sent, and what it was built from."""

    settings: Any
    rows: tuple[CameraRow, ...]
    flags: tuple[tuple[bool, str], ...]
    body: bytes


@dataclass
class _Kept:
    """The register as read at a database version, and the lists sent from it."""

    rows: Kept[tuple[CameraRow, ...]] = field(default_factory=lambda: Kept(entries=1))
    lists: Kept[_Listing] = field(default_factory=lambda: Kept(entries=64, size=32 << 20))


_KEPT: weakref.WeakKeyDictionary[Any, _Kept] = weakref.WeakKeyDictionary()


def _kept(hub: Any) -> _Kept:
    found = _KEPT.get(hub)
    if found is None:
        found = _KEPT[hub] = _Kept()
    return found


async def _register(hub: Any, version: Version | None) -> tuple[CameraRow, ...]:
    """Every row of the register, read once per database version."""
    kept = _kept(hub).rows
    rows = kept.get("rows", version) if version is not None else None
    if rows is None:
        rows = tuple(await hub.store.list_cameras())
        if version is not None:
            kept.put("rows", version, rows)
    return rows


def _flags(hub: Any, rows: tuple[CameraRow, ...]) -> tuple[tuple[bool, str], ...]:
    """Whether each camera may record now (the camera manager's memory, not the store)."""
    may_record = hub.cameras.may_record
    return tuple([may_record(r.id) for r in rows])


def _json_bytes(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def row_in_scope(hub: Any, request: web.Request, row: Any) -> bool:
    """``camera_visible`` for a row already read: its district from the site file,
    else the register's row itself (one query for the list, not one per camera)."""
    scope = request[PRINCIPAL_KEY].scope
    if scope.everything:
        return True
    configured = hub.config.settings.camera(row.id)
    district, groups = None, ()
    if configured is not None:
        groups = tuple(configured.groups)
        if configured.location is not None:
            district = configured.location.district
    if district is None:
        found = (row.location or {}).get("district")
        district = str(found) if found else None
    return bool(scope.allows(row.id, district, groups))


@routes.get("/api/cameras/{camera_id}")
@endpoint(
    "camera.read",
    camera="camera_id",
    tags=("cameras",),
    params=(CAMERA_ID,),
    responses={200: json_answer("The camera", CAMERA)},
)
async def get_camera(request: web.Request) -> web.Response:
    """One camera, with its state and whether it may record."""
    hub = hub_of(request)
    camera_id = _camera_id(request)
    version = await request_version(request, hub.store)
    rows = _kept(hub).rows.get("rows", version) if version is not None else None
    if rows is not None:  # the register as the lists read it, at this version
        row = next((r for r in rows if r.id == camera_id), None)
    else:  # one row, not the whole register
        row = await hub.store.get_camera(camera_id)
    if row is None:
        raise json_error("no such camera", web.HTTPNotFound)
    return web.json_response(_describe(row, hub.cameras.may_record(row.id)))


@routes.get("/api/discovery")
@endpoint(
    "camera.adopt",
    tags=("discovery",),
    responses={
        200: json_answer(
            "The discovery sources and the cameras found, not yet adopted",
            {
                "type": "object",
                "required": ["sources", "cameras"],
                "properties": {
                    "sources": {"type": "array", "items": {"type": "string"}},
                    "last_scan": {"type": ["object", "null"]},
                    "cameras": {"type": "array", "items": CAMERA},
                },
            },
        )
    },
)
async def discovery(request: web.Request) -> web.Response:
    """Discovered cameras waiting for adoption."""
    hub = hub_of(request)
    rows = [r for r in await hub.store.list_cameras() if r.origin == "discovered"]
    return web.json_response(
        {
            "sources": sorted(hub.discovery.sources),
            "last_scan": hub.discovery.last_scan,
            "cameras": [r.as_dict() for r in rows],
        }
    )


@routes.post("/api/discovery/scan")
@endpoint(
    "camera.adopt",
    tags=("discovery",),
    audited="discovery.scan",
    body=SCAN_BODY,
    responses={
        200: json_answer(
            "What the scan found",
            {"type": "object", "required": ["found"], "properties": {"found": {"type": "array"}}},
        ),
        409: error("No discovery source is configured"),
    },
)
async def scan(request: web.Request) -> web.Response:
    """Scan the network with every discovery source, for at most ``timeout`` seconds."""
    hub = hub_of(request)
    body = await json_body(request, empty_ok=True)
    timeout = body.get("timeout", 3.0)
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if not number or not 0.1 <= timeout <= 30:
        raise json_error("timeout must be a number of seconds in 0.1..30")
    if not hub.discovery.sources:
        raise json_error(
            "no discovery source is configured (discovery: in the site file)", web.HTTPConflict
        )
    await started(request, "discovery.scan", None, timeout=float(timeout))
    found = await hub.discovery.scan_all(float(timeout))
    await ended(request, "discovery.scan", None, found=len(found))
    return web.json_response({"found": [e.as_dict() for e in found]}, dumps=dumps_lenient)


@routes.post("/api/cameras/{camera_id}/adopt")
@endpoint(
    "camera.adopt",
    camera="camera_id",
    tags=("discovery",),
    audited="camera.adopt",
    params=(CAMERA_ID,),
    body=ADOPT_BODY,
    body_required=True,
    responses={
        201: json_answer("The camera, adopted and being started", CAMERA),
        422: error("The adoption is refused (authorisation expired, unknown district...)"),
    },
)
async def adopt(request: web.Request) -> web.Response:
    """Adopt a discovered camera under a valid authorisation, and start driving it."""
    hub = hub_of(request)
    camera_id = _camera_id(request)
    body = await json_body(request, empty_ok=True)
    audited_below(request)  # the adoption audits itself: started, refused, ok (one story)
    try:
        await hub.cameras.adopt(camera_id, body, actor=request[USER_KEY])
    except AdoptionError as err:
        raise json_error(str(err), web.HTTPUnprocessableEntity) from None
    row = await hub.store.get_camera(camera_id)
    return web.json_response(_describe(row, hub.cameras.may_record(camera_id)), status=201)


#: The PTZ moves of the web API's cameras; their pending stops end with the app.
PTZ_KEY: web.AppKey[PtzMoves] = web.AppKey("ptz", PtzMoves)


@routes.post("/api/cameras/{camera_id}/ptz")
@endpoint(
    "ptz.move",
    camera="camera_id",
    tags=("cameras",),
    audited="camera.ptz",
    params=(CAMERA_ID,),
    body=PTZ_BODY,
    body_required=True,
    responses={
        200: json_answer(
            "Done (a move answers at once; its stop is scheduled)",
            {
                "type": "object",
                "required": ["ok", "action"],
                "properties": {"ok": {"const": True}, "action": {"type": "string"}},
            },
        ),
        409: error("The camera's driver has no PTZ, or not this action"),
        502: error("The camera refused or failed the command"),
    },
)
async def ptz(request: web.Request) -> web.Response:
    """One PTZ action. A move answers at once; its stop is scheduled (see ``cameras.ptz``)."""
    hub = hub_of(request)
    camera_id = _camera_id(request)
    body = await json_body(request, empty_ok=True)
    try:
        action, params = validate_ptz(body)
    except PtzRequestError as err:
        raise json_error(str(err), field=err.field) from None
    driver = hub.cameras.drivers.get(camera_id)
    if driver is None:
        raise json_error("no such camera, or it is not adopted", web.HTTPNotFound)
    if not has_ptz(driver):
        raise json_error("this camera's driver has no PTZ", web.HTTPConflict)
    # written before the move, with its parameters exactly as validated
    await started(request, "camera.ptz", camera_id, action=action, **params)
    outcome, why = "failed", None
    try:
        result = await request.app[PTZ_KEY].run(camera_id, driver, action, params)
        outcome = "ok"
    except PtzUnsupported as err:
        outcome, why = "refused", str(err)
        raise json_error(str(err), web.HTTPConflict) from None
    except Exception as err:  # the camera's own failure, e.g. garbage to GetPresets
        why = str(err)[:300]
        raise json_error(str(err), web.HTTPBadGateway) from None
    finally:  # the outcome, whatever happens next (the stop is not the client's)
        await ended(request, "camera.ptz", camera_id, outcome, action=action, error=why)
    return web.json_response({"ok": True, "action": action, "result": result})


@routes.get("/api/cameras/{camera_id}/snapshot.jpg")
@endpoint(
    "live.view",
    camera="camera_id",
    tags=("cameras",),
    audited="camera.snapshot",
    summary="A live picture from the camera",
    params=(CAMERA_ID,),
    responses={
        200: binary("The picture", "image/jpeg"),
        409: error("The camera's driver cannot take snapshots"),
        502: error("The camera failed"),
        504: error("The camera did not send an image in time"),
    },
)
async def snapshot(request: web.Request) -> web.Response:
    hub = hub_of(request)
    camera_id = _camera_id(request)
    driver = hub.cameras.drivers.get(camera_id)
    if driver is None:
        raise json_error("no such camera, or it is not adopted", web.HTTPNotFound)
    if not hasattr(driver, "snapshot"):
        raise json_error("this camera's driver cannot take snapshots", web.HTTPConflict)
    try:
        image = await asyncio.wait_for(driver.snapshot(), 15)
    except TimeoutError:
        raise json_error(
            "the camera did not send an image in time", web.HTTPGatewayTimeout
        ) from None
    except Exception as err:
        raise json_error(str(err), web.HTTPBadGateway) from None
    # privacy masks, unless a lift is in force; never lifted on a wall's screen, which
    # the whole room sees (a lift is approved for an operator's look, not a display)
    principal = request[PRINCIPAL_KEY]
    on_a_wall = "wall" in principal.roles or any(
        s.startswith("wall:") for s in principal.scope.selectors
    )
    plan = await (playback_plan if on_a_wall else picture_plan)(hub, camera_id)
    try:  # a picture that cannot be masked is not shown (csuhub.masks.apply)
        image = await mask_jpeg(hub.processes, image, plan.apply)
    except MaskingTimeout:
        raise json_error("the picture was not masked in time", web.HTTPGatewayTimeout) from None
    except MaskingFailed as err:
        raise json_error(str(err), web.HTTPBadGateway) from None
    lift = plan.lift["id"] if plan.lift else None
    await entry(
        request, "camera.snapshot", camera_id, bytes=len(image), masked=bool(plan.apply), lift=lift
    )
    return web.Response(
        body=image, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
    )
