"""The panel's masks pages: privacy masks drawn on a snapshot, lift requests
and their approvals (see docs/panel.md).

``/panel/masks`` (``mask.lift.request``, which every role holding another mask
permission also holds) lists the cameras in the person's scope with their
masks, the lift requests and lifts in force, the form to ask for one and,
for holders of ``mask.lift.approve``, the buttons to approve or refuse
someone else's (the API enforces the four eyes; the page only hides one's own
request's buttons). ``/panel/masks/{camera_id}`` (``mask.edit``) is the
drawing page: the camera's snapshot (only with ``live.view``: else a neutral
frame of the camera's proportions, so no picture reaches a person not allowed
to see it) under an SVG where clicks make polygons in 0..1 coordinates, saved
with ``PUT /api/cameras/{id}/masks``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csuhub.masks.model import MAX_MASKS, MAX_NAME, MAX_POINTS
from csuhub.masks.policy import effective_masks
from csuhub.panel.render import HTML, _, page
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import endpoint
from csuhub.web.masks import visible_lifts
from csuhub.web.requests import hub_of, json_error, path_slug
from csuhub.web.schemas import CAMERA_ID

routes = web.RouteTableDef()

_PAGE = {200: ("The page", HTML, None)}
#: a lift's state, as the page says it (msgids; translated when rendered)
STATUSES = {
    "requested": _("waiting"),
    "approved": _("in force"),
    "refused": _("refused"),
    "expired": _("expired"),
    "ended": _("ended"),
}
#: the frame drawn on when the camera says nothing of its picture's size
DEFAULT_SIZE = (1280, 720)


def frame_size(row: Any) -> tuple[int, int]:
    """The camera's picture size as its driver last described it (the first
    profile with a sane width and height), else 16:9: the drawing's frame."""
    device = getattr(row, "device", None)
    profiles = device.get("profiles") if isinstance(device, dict) else None
    for profile in profiles if isinstance(profiles, list) else ():
        if not isinstance(profile, dict):
            continue
        width, height = profile.get("width"), profile.get("height")
        if isinstance(width, int) and isinstance(height, int):
            if 16 <= width <= 16384 and 16 <= height <= 16384:
                return width, height
    return DEFAULT_SIZE


async def _cameras(request: web.Request) -> list[Any]:
    hub = hub_of(request)
    return [r for r in await hub.store.list_cameras() if await camera_visible(request, r.id)]


@routes.get("/panel/masks")
@endpoint("mask.lift.request", tags=("panel",), responses=_PAGE)
async def overview(request: web.Request) -> web.Response:
    """Cameras and their masks, lift requests to make or decide, lifts in force."""
    hub = hub_of(request)
    rows = await _cameras(request)
    counts = {}
    for row in rows:
        counts[row.id] = len(await effective_masks(hub, row.id))
    found = await visible_lifts(request)
    return page(
        request,
        "masks/overview.html",
        {
            "cameras": rows,
            "counts": counts,
            "pending": [lift for lift in found if lift["status"] == "requested"],
            "lifts": [lift for lift in found if lift["status"] != "requested"][:50],
            "statuses": STATUSES,
            "durations": (5, 15, 30, 60),
        },
    )


@routes.get("/panel/masks/{camera_id}")
@endpoint("mask.edit", camera="camera_id", tags=("panel",), params=(CAMERA_ID,), responses=_PAGE)
async def draw(request: web.Request) -> web.Response:
    """The drawing page of one camera: its snapshot (or a neutral frame), the
    site file's masks (read-only) and the drawn ones."""
    hub = hub_of(request)
    camera_id = path_slug(request, "camera_id", "camera")
    row = await hub.store.get_camera(camera_id)
    if row is None:
        raise json_error("no such camera", web.HTTPNotFound)
    masks = [m.as_dict() for m in await effective_masks(hub, camera_id)]
    width, height = frame_size(row)
    return page(
        request,
        "masks/draw.html",
        {
            "camera": row,
            "site_masks": [m for m in masks if m["source"] == "site"],
            "drawn": [m for m in masks if m["source"] != "site"],
            "width": width,
            "height": height,
            "snapshot": request[PRINCIPAL_KEY].has("live.view"),
            "limits": {"masks": MAX_MASKS, "points": MAX_POINTS, "name": MAX_NAME},
        },
    )
