"""The panel's requisition pages (see docs/panel.md): the register of judicial
requisitions and one requisition's file, with the actions of the requisition
officer (register, export, download the package and its receipt, hand over,
close with the outcome).

The pages read through the same workflow and store as ``web/retention.py``
and show only requisitions whose cameras are all in the reader's scope (one
holding a camera outside it does not exist for them, as in the API). Every
action is a call of the JSON API from the page's module, so the workflow's
rules and its audit are the API's. The hub's signing fingerprint is shown
on both pages: it is what the police check a package against (``csuhub
verify --fingerprint``), received by another channel than the package.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, _, page, zone_of
from csuhub.recording.signing import fingerprint, load_private
from csuhub.requisitions.model import LEGAL_FRAMES
from csuhub.web.auth import PRINCIPAL_KEY, scope_of, sees_all
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import hub_of, path_id

#: the legal frames as the pages name them (English msgids, translated when shown)
FRAMES = {
    "flagrant_delit": _("Flagrante delicto"),
    "enquete_preliminaire": _("Preliminary inquiry"),
    "information_judiciaire": _("Judicial investigation"),
}
assert set(FRAMES) == set(LEGAL_FRAMES), "a legal frame without its label"

routes = web.RouteTableDef()

PAGE = {200: ("The page", HTML, None)}
#: each status's words (csuhub.requisitions.model.STATUSES)
STATUSES = {
    "requested": _("Requested"),
    "held": _("Footage held"),
    "exported": _("Exported"),
    "delivered": _("Handed over"),
    "closed": _("Closed"),
}
#: each outcome's words (csuhub.requisitions.model.OUTCOMES)
OUTCOME_WORDS = {
    "helped": _("The footage helped"),
    "not_helped": _("The footage did not help"),
    "unknown": _("Outcome unknown"),
}
#: what a missing piece of the scope is (csuhub.requisitions.scope)
MISSING = {"not_recorded": _("Not recorded"), "destroyed": _("Destroyed (retention)")}


async def _signer(request: web.Request) -> str | None:
    """The fingerprint of the key the hub signs packages with (None before it has one)."""
    hub = hub_of(request)
    key = hub.recording.signing_key or await asyncio.to_thread(load_private, hub.data_dir)
    return fingerprint(key) if key is not None else None


def _local(moment: float, request: web.Request) -> str:
    return datetime.fromtimestamp(moment, zone_of(request)).strftime("%Y-%m-%dT%H:%M")


@routes.get("/panel/requisitions")
@endpoint("requisition.read", tags=("panel",), params=(LANG,), responses=PAGE)
async def requisitions_page(request: web.Request) -> web.Response:
    """The register of requisitions in one's scope and, for the requisition
    officer, the form that registers one."""
    hub = hub_of(request)
    visible = scope_of(request)
    shown = [
        req
        for req in reversed(await hub.store.requisitions.list(None))
        if await sees_all(visible, req["cameras"])
    ]
    manage = request[PRINCIPAL_KEY].has("requisition.manage")
    cameras = []
    if manage:
        cameras = [
            {"id": row.id, "name": row.name}
            for row in sorted(await hub.store.list_cameras(), key=lambda r: r.id)
            if await visible(row.id)
        ]
    now = datetime.now(zone_of(request)).timestamp()
    values = {
        "requisitions": shown,
        "statuses": STATUSES,
        "manage": manage,
        "cameras": cameras,
        "frames": FRAMES,
        "signer": await _signer(request),
        "default_from": _local(now - 3600, request),
        "default_to": _local(now, request),
    }
    return page(request, "requisitions/list.html", values)


@routes.get("/panel/requisitions/{req_id}")
@endpoint(
    "requisition.read",
    tags=("panel",),
    params=(
        Param(
            "req_id",
            {"type": "string", "pattern": "^[0-9]{1,19}$"},
            where="path",
            description="a requisition id",
        ),
        LANG,
    ),
    responses={**PAGE, 404: ("No such requisition in the caller's scope", HTML, None)},
)
async def requisition_page(request: web.Request) -> web.Response:
    """One requisition: what it covers and what exists of it, its packages,
    its receipt, its hand-over and outcome, and the steps left."""
    hub = hub_of(request)
    req_id = path_id(request, "req_id", "requisition")
    found = await hub.store.requisitions.get(req_id)
    if found is None or not await sees_all(scope_of(request), found["cameras"]):
        raise web.HTTPNotFound(text=f"no requisition {req_id}")
    req = await hub.requisitions.get(req_id)
    folder = hub.requisitions.export_dir(req_id)
    receipt = await asyncio.to_thread((folder / "receipt.html").is_file)
    values = {
        "req": req,
        "statuses": STATUSES,
        "outcomes": OUTCOME_WORDS,
        "missing_words": MISSING,
        "frames": FRAMES,
        "manage": request[PRINCIPAL_KEY].has("requisition.manage"),
        "signer": await _signer(request),
        "receipt": receipt,
        "may_export": req["status"] in ("held", "exported", "delivered"),
        "may_deliver": req["status"] == "exported",
        "may_close": req["status"] != "closed",
    }
    return page(request, "requisitions/requisition.html", values)
