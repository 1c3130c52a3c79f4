"""The panel's Cameras pages (docs/panel.md): the list by district with each
camera's state and authorisation, the map of positions, the coverage of the
site's districts, and one page per camera (live view, PTZ, snapshot,
authorisation, retention).

Pages render on the server from the same register, scope check and flags the
camera API answers with (``csuhub.web.cameras``); live video, PTZ and
snapshots are done by the page's modules through the existing API
(``/api/live/{id}``, ``POST /api/cameras/{id}/ptz``,
``GET /api/cameras/{id}/snapshot.jpg``), which audit them. Controls are shown
only to whom holds ``live.view`` / ``ptz.move``; the API refuses the others
anyway, the page only spares them a button that cannot work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from csuhub.cameras.model import (
    ADOPTED,
    AUTH_EXPIRED,
    AUTH_EXPIRING,
    AUTH_MISSING,
    AUTH_VALID,
    DEGRADED,
    DISABLED,
    DISCOVERED,
    OFFLINE,
    ONLINE,
    PENDING,
    REMOVED,
)
from csuhub.cameras.ptz import has_ptz
from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, _, page
from csuhub.store.records import CameraRow
from csuhub.web import kiosk
from csuhub.web.auth import PRINCIPAL_KEY
from csuhub.web.cameras import row_in_scope
from csuhub.web.declare import endpoint
from csuhub.web.requests import hub_of, path_slug
from csuhub.web.schemas import CAMERA_ID

routes = web.RouteTableDef()

RECORDING = "recording"
#: a camera's state as the list shows it (msgids; translated when rendered)
STATES = {
    RECORDING: _("Recording"),
    ONLINE: _("Online, not recording"),
    DEGRADED: _("Degraded"),
    OFFLINE: _("Offline"),
    DISABLED: _("Disabled"),
    REMOVED: _("Removed"),
    ADOPTED: _("Starting"),
    DISCOVERED: _("Discovered, not adopted"),
    PENDING: _("Discovered, not adopted"),
}
#: the badge class of each state
TONES = {RECORDING: "ok", ONLINE: "warn", DEGRADED: "warn", ADOPTED: "warn"}
AUTHORISATIONS = {
    AUTH_VALID: _("Valid"),
    AUTH_EXPIRING: _("Expires within 30 days"),
    AUTH_EXPIRED: _("Authorisation expired"),
    AUTH_MISSING: _("No authorisation"),
}
AUTH_TONES = {AUTH_VALID: "ok", AUTH_EXPIRING: "warn"}
#: the hub's fixed reasons (csuhub.cameras), translated; a camera's own message
#: (an exception's text, "slow to answer (3.2s)") is shown as the hub wrote it
REASONS = {
    "disabled in the site file": _("disabled in the site file"),
    "no longer in the site file": _("no longer in the site file"),
    "removed from the site file": _("removed from the site file"),
    "health check failed": _("health check failed"),
    "no prefectoral authorisation": _("no prefectoral authorisation"),
    "not adopted": _("not adopted"),
    "disabled": _("camera disabled"),
}
PAGE = {200: ("The page", HTML, None)}


@dataclass(frozen=True)
class CameraView:
    """One camera as the panel's pages show it."""

    id: str
    name: str
    district: str | None
    state: str  # a key of STATES
    reason: str
    authorization_ref: str | None
    authorization_issued: str | None
    authorization_expires: str | None
    authorization_status: str
    lat: float | None
    lon: float | None

    @property
    def label(self) -> str:
        return STATES.get(self.state, self.state)

    @property
    def reason_text(self) -> str:
        """The reason as a msgid when the hub's wording is a fixed one."""
        return REASONS.get(self.reason, self.reason)

    @property
    def tone(self) -> str:
        return TONES.get(self.state, "bad")

    @property
    def authorization_label(self) -> str:
        return AUTHORISATIONS.get(self.authorization_status, self.authorization_status)

    @property
    def authorization_tone(self) -> str:
        return AUTH_TONES.get(self.authorization_status, "bad")


def placement(hub: Any, row: CameraRow) -> tuple[str | None, float | None, float | None]:
    """District and position: the site file's, else the register's (an adopted camera)."""
    configured = hub.config.settings.camera(row.id)
    if configured is not None and configured.location is not None:
        where = configured.location
        return where.district, where.lat, where.lon
    location = row.location or {}
    district = location.get("district")
    lat, lon = location.get("lat"), location.get("lon")
    number = (int, float)
    return (
        str(district) if district else None,
        float(lat) if isinstance(lat, number) else None,
        float(lon) if isinstance(lon, number) else None,
    )


def view_of(hub: Any, row: CameraRow) -> CameraView:
    """The camera with its state now: recording when a recorder runs, else the
    register's state; the reason is the register's, else why it may not record."""
    district, lat, lon = placement(hub, row)
    recording = row.id in getattr(hub.recording, "recorders", {})
    allowed, why = hub.cameras.may_record(row.id)
    state = RECORDING if recording else row.state
    reason = "" if recording else (row.state_reason or ("" if allowed else why))
    return CameraView(
        id=row.id,
        name=row.name or row.id,
        district=district,
        state=state,
        reason=reason,
        authorization_ref=row.authorization_ref,
        authorization_issued=row.authorization_issued,
        authorization_expires=row.authorization_expires,
        authorization_status=row.authorization_status,
        lat=lat,
        lon=lon,
    )


def by_district(
    districts: Sequence[str], cameras: Iterable[CameraView]
) -> list[tuple[str | None, list[CameraView]]]:
    """Cameras grouped in the site's district order; other districts after
    them, cameras without a district last (None)."""
    groups: dict[str | None, list[CameraView]] = {}
    for camera in cameras:
        groups.setdefault(camera.district, []).append(camera)
    order = [d for d in districts if d in groups]
    order += sorted(d for d in groups if d is not None and d not in districts)
    if None in groups:
        order.append(None)
    return [(d, sorted(groups[d], key=lambda c: (c.name.casefold(), c.id))) for d in order]


def coverage(districts: Sequence[str], placed: Iterable[str | None]) -> list[tuple[str, int]]:
    """Every district of the site with its number of cameras (0: not covered)."""
    counts = dict.fromkeys(districts, 0)
    for district in placed:
        if district in counts:
            counts[district] += 1
    return list(counts.items())


def map_points(cameras: Iterable[CameraView]) -> list[dict[str, Any]]:
    """The map's markers: cameras with a position, linking to their page."""
    return [
        {
            "lat": c.lat,
            "lon": c.lon,
            "label": c.name,
            "href": f"/panel/cameras/{c.id}",
            "tone": c.tone,
        }
        for c in cameras
        if c.lat is not None and c.lon is not None
    ]


def days(seconds: float) -> int | float:
    """Seconds as days for people: whole days as integers (14, not 14.0)."""
    value = round(seconds / 86400, 1)
    return int(value) if value.is_integer() else value


def tiles_of(hub: Any) -> dict[str, Any]:
    """The map's tile server (or none: a plain background) for the templates."""
    panel = hub.config.settings.panel
    return {"url": panel.tile_url or "", "attribution": panel.tile_attribution or ""}


@routes.get("/panel/cameras")
@endpoint("camera.read", tags=("panel",), params=(LANG,), responses=PAGE)
async def cameras_page(request: web.Request) -> web.Response:
    """The cameras by district with their states, their map, and the districts' coverage."""
    hub = hub_of(request)
    rows = await hub.store.list_cameras()
    kept = [r for r in rows if row_in_scope(hub, request, r)]
    visible = [view_of(hub, r) for r in kept]
    districts = hub.config.settings.hub.districts
    # coverage counts only what the person may see, and a scoped person sees only
    # the districts of its scope: counting the whole register would tell an
    # operator of one district how many cameras watch the others
    scope = request[PRINCIPAL_KEY].scope
    installed = [
        placement(hub, r)[0] for r in kept if r.origin != DISCOVERED and r.state != REMOVED
    ]
    mine = set(installed)
    shown = [
        d for d in districts if scope.everything or d in mine or f"district:{d}" in scope.selectors
    ]
    values = {
        "groups": by_district(districts, visible),
        "count": len(visible),
        "coverage": coverage(shown, installed),
        "points": map_points(visible),
        "tiles": tiles_of(hub),
    }
    return page(
        request, "cameras/list.html", values, tile_origins=hub.config.settings.panel.tile_origins
    )


@routes.get("/panel/cameras/{camera_id}")
@endpoint(
    "camera.read", camera="camera_id", tags=("panel",), params=(CAMERA_ID, LANG), responses=PAGE
)
async def camera_page(request: web.Request) -> web.Response:
    """One camera: live view, PTZ and presets, snapshot, authorisation and retention."""
    hub = hub_of(request)
    camera_id = path_slug(request, "camera_id", "camera")
    row = await hub.store.get_camera(camera_id)
    if row is None:
        raise web.HTTPNotFound(text="no such camera")
    me = request[PRINCIPAL_KEY]
    driver = hub.cameras.drivers.get(camera_id)
    kept = hub.retention.camera_retention().get(camera_id)
    values = {
        "camera": view_of(hub, row),
        "can_live": me.has("live.view") and driver is not None,
        "can_snapshot": me.has("live.view") and driver is not None and hasattr(driver, "snapshot"),
        "can_ptz": me.has("ptz.move") and driver is not None and has_ptz(driver),
        "retention_days": None if kept is None else days(kept.retention),
        "minimum_days": None if kept is None or not kept.minimum else days(kept.minimum),
        "player": f"/static/kiosk/{kiosk.assets_version()}/player.js",
    }
    return page(request, "cameras/camera.html", values)
