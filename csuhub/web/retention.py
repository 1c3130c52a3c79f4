"""Retention status, the destruction register, and judicial requisitions.

Least privilege, by permission: ``retention.read`` for the status and the
destruction register (which carry no footage, so the ethics committee's
auditor reads them), ``requisition.read`` for requisitions, ``audit.read``
for their figures, ``requisition.manage`` (the requisition officer's) to
register, export, hand over and close one.

Everything here is limited to the principal's camera scope: the status and
the registers list only cameras in scope (a ``camera=`` outside it is a 404),
and a requisition holding any camera outside it does not exist for the
principal (404 everywhere, and absent from the lists), nor can one be
registered over such a camera.

A requisition step is audited once, by the workflow (``csuhub.requisitions.
story``), from the moment this layer hands it over (``audited_below``);
what this layer refuses before that (a bad body, a requisition out of scope)
the middleware audits as refused (``csuhub.web.auditing``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from csuhub.requisitions import (
    STATUSES,
    RequisitionConflict,
    RequisitionError,
    UnknownCamera,
)
from csuhub.store.sweeps import DESTRUCTION_COLUMNS
from csuhub.timeutil import TimeError, check_epoch, parse_time
from csuhub.web.auditing import audited_below, entry
from csuhub.web.auth import PRINCIPAL_KEY, Visible, scope_of, sees_all
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import (
    file_response,
    hub_of,
    json_body,
    json_error,
    no_body,
    path_id,
    path_name,
)
from csuhub.web.schemas import (
    REQUISITION,
    TIME_VALUE,
    binary,
    error,
    json_answer,
    time_param,
)

routes = web.RouteTableDef()
_FILE = re.compile(r"^[A-Za-z0-9._-]{1,120}$")

REQ_ID = Param(
    "req_id",
    {"type": "string", "pattern": "^[0-9]{1,19}$"},
    where="path",
    description="a requisition id",
)
CAMERA_FILTER = Param("camera", {"type": "string"}, description="only this camera's entries")
FORMAT = Param(
    "format",
    {"type": "string", "enum": ["json", "csv"]},
    description="csv: the register as a CSV file (anything else: JSON)",
)
_LIST = {"type": "object"}
_CSV = {"text/csv": None}
#: csuhub.requisitions.model.CREATE_SCHEMA, with the range as the API takes it
CREATE_BODY = {
    "type": "object",
    "required": ["reference", "service", "officer", "legal_frame", "cameras", "from", "to"],
    "additionalProperties": False,
    "properties": {
        "reference": {"type": "string", "minLength": 1, "maxLength": 100},
        "service": {"type": "string", "minLength": 1, "maxLength": 200},
        "officer": {"type": "string", "minLength": 1, "maxLength": 200},
        "legal_frame": {
            "type": "string",
            "enum": ["enquete_preliminaire", "flagrant_delit", "information_judiciaire"],
        },
        "cameras": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        },
        "from": TIME_VALUE,
        "to": TIME_VALUE,
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
}
_STEP_ANSWERS = {
    200: json_answer("The requisition after the step", REQUISITION),
    404: error("No such requisition"),
    409: error("The requisition's state refuses the step"),
}


async def _camera_query(request: web.Request, visible: Visible) -> str | None:
    """``?camera=``, a 404 (as for a camera that does not exist) outside the scope."""
    camera = request.query.get("camera")
    if camera is not None and not await visible(camera):
        raise json_error(f"no camera {camera[:64]!r}", web.HTTPNotFound)
    return camera


async def _requisition(request: web.Request, visible: Visible | None = None) -> dict[str, Any]:
    """The path's requisition; one holding a camera outside the principal's scope
    is answered as one that does not exist."""
    req_id = _id(request)
    found = await hub_of(request).store.requisitions.get(req_id)
    if found is None or not await sees_all(visible or scope_of(request), found["cameras"]):
        raise json_error(f"no requisition {req_id}", web.HTTPNotFound)
    return found


def parse_status(value: str | None) -> str | None:
    """``?status=``: one of the statuses exactly, else a 400 (not an empty list)."""
    if value is not None and value not in STATUSES:
        raise json_error(f"status: one of {', '.join(STATUSES)}")
    return value


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
@endpoint(
    "retention.read",
    tags=("retention",),
    responses={200: json_answer("Policies, storage and the last sweeps")},
)
async def retention_status(request: web.Request) -> web.Response:
    """Retention policies, storage use and the last sweeps: per camera, only
    the cameras in scope (the disk and the sweeps' totals are the hub's)."""
    status = await hub_of(request).retention.status()
    visible = scope_of(request)
    for key in ("cameras", "holds"):
        status[key] = [row for row in status[key] if await visible(row["camera_id"])]
    status["alerts"] = [
        alert
        for alert in status["alerts"]
        if alert.get("camera_id") is None or await visible(alert["camera_id"])
    ]
    return _json(status)


@routes.get("/api/register/destructions")
@endpoint(
    "retention.read",
    tags=("retention",),
    params=(
        CAMERA_FILTER,
        time_param("from", "destructions from this time"),
        time_param("to", "destructions before this time"),
        FORMAT,
    ),
    responses={200: json_answer("The destruction register", _LIST)},
    also={200: _CSV},
)
async def destructions(request: web.Request) -> web.Response:
    """The destruction register: what footage each sweep destroyed, and why."""
    hub = hub_of(request)
    visible = scope_of(request)
    camera = await _camera_query(request, visible)
    start = _when(hub, request.query["from"], "from") if "from" in request.query else None
    end = _when(hub, request.query["to"], "to") if "to" in request.query else None
    found = await hub.store.retention.destructions(camera, start, end)
    rows = [row for row in found if await visible(row["camera_id"])]
    if request.query.get("format") == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(DESTRUCTION_COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in DESTRUCTION_COLUMNS])
        return _csv(buffer.getvalue(), "destructions.csv")
    return _json({"destructions": rows})


@routes.get("/api/register/kept")
@endpoint(
    "retention.read",
    tags=("retention",),
    params=(CAMERA_FILTER,),
    responses={200: json_answer("Footage kept past its term", _LIST)},
)
async def kept(request: web.Request) -> web.Response:
    """Expired footage a sweep kept because a retention_hold plugin vetoed or failed."""
    visible = scope_of(request)
    camera = await _camera_query(request, visible)
    found = await hub_of(request).store.retention.kept(camera)
    return _json({"kept": [row for row in found if await visible(row["camera_id"])]})


@routes.get("/api/requisitions")
@endpoint(
    "requisition.read",
    tags=("requisitions",),
    params=(
        Param(
            "status",
            {"type": "string", "enum": list(STATUSES)},
            description="only requisitions in this state",
        ),
        FORMAT,
    ),
    responses={200: json_answer("The requisitions", _LIST), 400: error("An unknown status")},
    also={200: _CSV},
)
async def list_requisitions(request: web.Request) -> web.Response:
    """The requisitions, or the requisition register as CSV: those whose cameras
    are all in the principal's scope."""
    hub = hub_of(request)
    status = parse_status(request.query.get("status"))
    visible = scope_of(request)
    shown = [
        req
        for req in await hub.store.requisitions.list(status)
        if await sees_all(visible, req["cameras"])
    ]
    if request.query.get("format") == "csv":
        return _csv(await hub.requisitions.register_csv(shown), "requisitions.csv")
    return _json({"requisitions": shown})


@routes.get("/api/requisitions/stats")
@endpoint(
    "audit.read",
    tags=("requisitions", "ethics"),
    responses={200: json_answer("Counts by status, outcome and legal frame")},
)
async def requisition_stats(request: web.Request) -> web.Response:
    """Requisition figures for the ethics committee: numbers, no footage."""
    return _json(await hub_of(request).store.requisitions.stats())


@routes.post("/api/requisitions")
@endpoint(
    "requisition.manage",
    tags=("requisitions",),
    audited="requisition.create",
    body=CREATE_BODY,
    body_required=True,
    responses={
        201: json_answer("The requisition, registered, its footage held", REQUISITION),
        404: error("A camera unknown, or outside the caller's scope"),
        409: error("A requisition with that reference exists"),
    },
)
async def create_requisition(request: web.Request) -> web.Response:
    """Register a judicial requisition and hold its footage."""
    hub = hub_of(request)
    body = await json_body(request)
    payload = {k: v for k, v in body.items() if k not in ("from", "to")}
    for field, key in (("from", "start"), ("to", "end")):
        if field not in body:
            raise json_error(f"{field}: required")
        payload[key] = _when(hub, body[field], field)
    audited_below(request)
    try:
        created = await hub.requisitions.create(payload, request[PRINCIPAL_KEY], scope_of(request))
    except UnknownCamera as err:
        raise json_error(str(err), web.HTTPNotFound) from None
    except RequisitionConflict as err:
        raise json_error(str(err), web.HTTPConflict) from None
    except RequisitionError as err:
        raise json_error(str(err)) from None
    return _json(created, status=201)


@routes.get("/api/requisitions/{req_id}")
@endpoint(
    "requisition.read",
    tags=("requisitions",),
    params=(REQ_ID,),
    responses={200: json_answer("The requisition", REQUISITION), 404: error("No such one")},
)
async def get_requisition(request: web.Request) -> web.Response:
    """A requisition with its extractions."""
    await _requisition(request)
    try:
        return _json(await hub_of(request).requisitions.get(_id(request)))
    except RequisitionError as err:
        raise json_error(str(err), web.HTTPNotFound) from None


@routes.post("/api/requisitions/{req_id}/export")
@endpoint(
    "requisition.manage",
    tags=("requisitions",),
    audited="requisition.export",
    params=(REQ_ID,),
    body={"type": "object", "maxProperties": 0, "description": "nothing, or {}"},
    responses=_STEP_ANSWERS,
)
async def export_requisition(request: web.Request) -> web.Response:
    """Export the requisition's footage to an evidence package."""
    await no_body(request)
    await _requisition(request)
    audited_below(request)
    return await _step(hub_of(request).requisitions.export(_id(request), request[PRINCIPAL_KEY]))


@routes.get("/api/requisitions/{req_id}/files/{name}")
@endpoint(
    "requisition.manage",
    tags=("requisitions",),
    audited="requisition.download",
    params=(
        REQ_ID,
        Param(
            "name",
            {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,120}$"},
            where="path",
            description="a file of the export (package, manifest, receipt)",
        ),
    ),
    responses={
        200: binary("The file", "application/octet-stream"),
        206: binary("Part of it (one byte range)", "application/octet-stream"),
        404: error("No such file"),
        416: error("The byte range cannot be satisfied"),
    },
)
async def requisition_file(request: web.Request) -> web.StreamResponse:
    """A file of the requisition's export, with HTTP range support."""
    hub = hub_of(request)
    await _requisition(request)
    name = path_name(request, "name", "file")
    folder = hub.requisitions.export_dir(_id(request)).resolve()
    path = (folder / name).resolve()
    if not _FILE.match(name) or not path.is_relative_to(folder) or not path.is_file():
        raise json_error("no such file", web.HTTPNotFound)
    await entry(request, "requisition.download", f"requisition:{_id(request)}", file=name)
    return await file_response(request, path)


@routes.post("/api/requisitions/{req_id}/deliver")
@endpoint(
    "requisition.manage",
    tags=("requisitions",),
    audited="requisition.deliver",
    params=(REQ_ID,),
    body={
        "type": "object",
        "required": ["to"],
        "properties": {"to": {"type": "string", "minLength": 1, "pattern": r"\S"}},
    },
    body_required=True,
    responses=_STEP_ANSWERS,
)
async def deliver_requisition(request: web.Request) -> web.Response:
    """Record to whom the exported package was handed over."""
    body = await json_body(request)
    to = str(body.get("to", ""))
    await _requisition(request)
    audited_below(request)
    requisitions = hub_of(request).requisitions
    return await _step(requisitions.deliver(_id(request), request[PRINCIPAL_KEY], to))


@routes.post("/api/requisitions/{req_id}/close")
@endpoint(
    "requisition.manage",
    tags=("requisitions",),
    audited="requisition.close",
    params=(REQ_ID,),
    body={
        "type": "object",
        "required": ["outcome"],
        "properties": {"outcome": {"type": "string", "enum": ["helped", "not_helped", "unknown"]}},
    },
    body_required=True,
    responses=_STEP_ANSWERS,
)
async def close_requisition(request: web.Request) -> web.Response:
    """Close the requisition with its outcome, releasing its holds."""
    body = await json_body(request)
    outcome = str(body.get("outcome", ""))
    await _requisition(request)
    audited_below(request)
    requisitions = hub_of(request).requisitions
    return await _step(requisitions.close(_id(request), request[PRINCIPAL_KEY], outcome))
