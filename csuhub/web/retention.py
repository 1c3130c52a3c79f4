"""Retention status, the destruction register, and judicial requisitions.

Least privilege, by permission: ``retention.read`` for the status and the
destruction register (which carry no footage, so the ethics committee's
auditor reads them), ``requisition.read`` for requisitions and their figures,
``requisition.manage`` (the requisition officer's) to register, export, hand
over and close one.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from csuhub.requisitions import RequisitionConflict, RequisitionError
from csuhub.store.sweeps import DESTRUCTION_COLUMNS
from csuhub.timeutil import TimeError, check_epoch, parse_time
from csuhub.web.auth import USER_KEY
from csuhub.web.declare import endpoint
from csuhub.web.requests import (
    file_response,
    hub_of,
    json_body,
    json_error,
    no_body,
    path_id,
    path_name,
)

routes = web.RouteTableDef()
_FILE = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _id(request: web.Request) -> int:
    return path_id(request, "req_id", "requisition")


def _when(hub: Any, value: Any, field: str) -> float:
    """A time from a query or a JSON body: ISO 8601 text or epoch seconds, both bounded
    to the years the hub can print (``check_epoch``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise json_error(f"{field}: a time is required (ISO 8601 or epoch seconds)")
    try:
        if isinstance(value, str):
            return parse_time(value, hub.config.hub["timezone"])
        return check_epoch(float(value), value)
    except TimeError as err:
        raise json_error(f"{field}: {err}") from None


async def _step(action: Awaitable[Any]) -> web.Response:
    """A workflow step; one the requisition's state or the input refuses is a 409."""
    try:
        return _json(await action)
    except RequisitionError as err:
        raise json_error(str(err), web.HTTPConflict) from None


def _csv(text: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.get("/api/retention/status")
@endpoint("retention.read", tags=("retention",))
async def retention_status(request: web.Request) -> web.Response:
    return _json(await hub_of(request).retention.status())


@routes.get("/api/register/destructions")
@endpoint("retention.read", tags=("retention",))
async def destructions(request: web.Request) -> web.Response:
    hub = hub_of(request)
    camera = request.query.get("camera")
    start = _when(hub, request.query["from"], "from") if "from" in request.query else None
    end = _when(hub, request.query["to"], "to") if "to" in request.query else None
    rows = await hub.store.retention.destructions(camera, start, end)
    if request.query.get("format") == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(DESTRUCTION_COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in DESTRUCTION_COLUMNS])
        return _csv(buffer.getvalue(), "destructions.csv")
    return _json({"destructions": rows})


@routes.get("/api/register/kept")
@endpoint("retention.read", tags=("retention",))
async def kept(request: web.Request) -> web.Response:
    """Expired footage a sweep kept because a retention_hold plugin vetoed or failed."""
    camera = request.query.get("camera")
    return _json({"kept": await hub_of(request).store.retention.kept(camera)})


@routes.get("/api/requisitions")
@endpoint("requisition.read", tags=("requisitions",))
async def list_requisitions(request: web.Request) -> web.Response:
    hub = hub_of(request)
    if request.query.get("format") == "csv":
        return _csv(await hub.requisitions.register_csv(), "requisitions.csv")
    status = request.query.get("status")
    return _json({"requisitions": await hub.store.requisitions.list(status)})


@routes.get("/api/requisitions/stats")
@endpoint("audit.read", tags=("requisitions", "ethics"))
async def requisition_stats(request: web.Request) -> web.Response:
    return _json(await hub_of(request).store.requisitions.stats())


@routes.post("/api/requisitions")
@endpoint("requisition.manage", tags=("requisitions",), audited="requisition.create")
async def create_requisition(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await json_body(request)
    payload = {k: v for k, v in body.items() if k not in ("from", "to")}
    for field, key in (("from", "start"), ("to", "end")):
        if field not in body:
            raise json_error(f"{field}: required")
        payload[key] = _when(hub, body[field], field)
    try:
        created = await hub.requisitions.create(payload, request[USER_KEY])
    except RequisitionConflict as err:
        raise json_error(str(err), web.HTTPConflict) from None
    except RequisitionError as err:
        raise json_error(str(err)) from None
    return _json(created, status=201)


@routes.get("/api/requisitions/{req_id}")
@endpoint("requisition.read", tags=("requisitions",))
async def get_requisition(request: web.Request) -> web.Response:
    try:
        return _json(await hub_of(request).requisitions.get(_id(request)))
    except RequisitionError as err:
        raise json_error(str(err), web.HTTPNotFound) from None


@routes.post("/api/requisitions/{req_id}/export")
@endpoint("requisition.manage", tags=("requisitions",), audited="requisition.export")
async def export_requisition(request: web.Request) -> web.Response:
    await no_body(request)
    return await _step(hub_of(request).requisitions.export(_id(request), request[USER_KEY]))


@routes.get("/api/requisitions/{req_id}/files/{name}")
@endpoint("requisition.manage", tags=("requisitions",), audited="requisition.download")
async def requisition_file(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    name = path_name(request, "name", "file")
    folder = hub.requisitions.export_dir(_id(request)).resolve()
    path = (folder / name).resolve()
    if not _FILE.match(name) or not path.is_relative_to(folder) or not path.is_file():
        raise json_error("no such file", web.HTTPNotFound)
    await hub.store.audit(
        request[USER_KEY], "requisition.download", f"requisition:{_id(request)}", file=name
    )
    return await file_response(request, path)


@routes.post("/api/requisitions/{req_id}/deliver")
@endpoint("requisition.manage", tags=("requisitions",), audited="requisition.deliver")
async def deliver_requisition(request: web.Request) -> web.Response:
    body = await json_body(request)
    requisitions = hub_of(request).requisitions
    return await _step(
        requisitions.deliver(_id(request), request[USER_KEY], str(body.get("to", "")))
    )


@routes.post("/api/requisitions/{req_id}/close")
@endpoint("requisition.manage", tags=("requisitions",), audited="requisition.close")
async def close_requisition(request: web.Request) -> web.Response:
    body = await json_body(request)
    requisitions = hub_of(request).requisitions
    return await _step(
        requisitions.close(_id(request), request[USER_KEY], str(body.get("outcome", "")))
    )
