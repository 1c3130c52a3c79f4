"""Camera and discovery endpoints. Handlers stay thin: the registry does the work.

Each route declares its permission (``camera.read``, ``live.view`` for a
snapshot, ``ptz.move``, ``camera.adopt`` for scans and adoption); lists show
only the cameras in the caller's scope. Snapshots and PTZ commands are audited
when they are given: viewing must be accountable.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from csuhub.cameras.model import AdoptionError
from csuhub.cameras.ptz import PtzMoves, PtzRequestError, has_ptz
from csuhub.cameras.ptz import validate as validate_ptz
from csuhub.protocols import PtzUnsupported
from csuhub.web.auth import USER_KEY, camera_visible
from csuhub.web.declare import endpoint
from csuhub.web.requests import hub_of, json_body, json_error, path_slug

routes = web.RouteTableDef()


def _camera_id(request: web.Request) -> str:
    return path_slug(request, "camera_id", "camera")


def _describe(hub: Any, row: Any) -> dict[str, Any]:
    data = row.as_dict()
    allowed, why = hub.cameras.may_record(row.id)
    data["recording_allowed"] = allowed
    data["recording_blocked_reason"] = why or None
    return data


@routes.get("/api/cameras")
@endpoint("camera.read", tags=("cameras",))
async def list_cameras(request: web.Request) -> web.Response:
    hub = hub_of(request)
    rows = [r for r in await hub.store.list_cameras() if await camera_visible(request, r.id)]
    return web.json_response({"cameras": [_describe(hub, r) for r in rows]})


@routes.get("/api/cameras/{camera_id}")
@endpoint("camera.read", camera="camera_id", tags=("cameras",))
async def get_camera(request: web.Request) -> web.Response:
    hub = hub_of(request)
    row = await hub.store.get_camera(_camera_id(request))
    if row is None:
        raise json_error("no such camera", web.HTTPNotFound)
    return web.json_response(_describe(hub, row))


@routes.get("/api/discovery")
@endpoint("camera.adopt", tags=("discovery",))
async def discovery(request: web.Request) -> web.Response:
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
@endpoint("camera.adopt", tags=("discovery",), audited="discovery.scan")
async def scan(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await json_body(request, empty_ok=True)
    timeout = body.get("timeout", 3.0)
    if not isinstance(timeout, int | float) or not 0.1 <= timeout <= 30:
        raise json_error("timeout must be a number of seconds in 0.1..30")
    if not hub.discovery.sources:
        raise json_error(
            "no discovery source is configured (discovery: in the site file)", web.HTTPConflict
        )
    found = await hub.discovery.scan_all(float(timeout))
    await hub.store.audit(request[USER_KEY], "discovery.scan", None, found=len(found))
    return web.json_response({"found": [e.as_dict() for e in found]}, dumps=_dumps)


@routes.post("/api/cameras/{camera_id}/adopt")
@endpoint("camera.adopt", camera="camera_id", tags=("discovery",), audited="camera.adopt")
async def adopt(request: web.Request) -> web.Response:
    hub = hub_of(request)
    camera_id = _camera_id(request)
    body = await json_body(request, empty_ok=True)
    try:
        await hub.cameras.adopt(camera_id, body, actor=request[USER_KEY])
    except AdoptionError as err:
        raise json_error(str(err), web.HTTPUnprocessableEntity) from None
    row = await hub.store.get_camera(camera_id)
    return web.json_response(_describe(hub, row), status=201)


#: The PTZ moves of the web API's cameras; their pending stops end with the app.
PTZ_KEY: web.AppKey[PtzMoves] = web.AppKey("ptz", PtzMoves)


@routes.post("/api/cameras/{camera_id}/ptz")
@endpoint("ptz.move", camera="camera_id", tags=("cameras",), audited="camera.ptz")
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
    outcome = "failed"
    try:
        result = await request.app[PTZ_KEY].run(camera_id, driver, action, params)
        outcome = "ok"
    except PtzUnsupported as err:
        outcome = "unsupported"
        raise json_error(str(err), web.HTTPConflict) from None
    except Exception as err:  # the camera's own failure, e.g. garbage to GetPresets
        raise json_error(str(err), web.HTTPBadGateway) from None
    finally:  # audited now, whatever happens next (the stop is not the client's)
        await hub.store.audit(
            request[USER_KEY], "camera.ptz", camera_id, action=action, outcome=outcome, **params
        )
    return web.json_response({"ok": True, "action": action, "result": result})


@routes.get("/api/cameras/{camera_id}/snapshot.jpg")
@endpoint("live.view", camera="camera_id", tags=("cameras",), audited="camera.snapshot")
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
    await hub.store.audit(request[USER_KEY], "camera.snapshot", camera_id, bytes=len(image))
    return web.Response(
        body=image, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
    )


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)
