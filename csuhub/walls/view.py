"""A wall as one reader may see it: the JSON of ``GET /api/walls/{wall}``,
which kiosks render.

Each tile is resolved for the reader: an incident slot becomes the
incident's camera of that rank, a camera outside the reader's scope becomes
``null`` with the reason ``out_of_scope`` (its id is not shown either), and a
camera the register does not say is online is not ``playable``
(``offline``). Carousels are cycled by the kiosk: their tile carries the
cameras in scope and the dwell, and no single ``camera``. A screen's
incident id is shown only to a reader who sees one of its cameras.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from csuhub.cameras.model import DEGRADED, ONLINE
from csuhub.refs import IncidentRef
from csuhub.walls.screens import Screen, Wall
from csuhub.walls.tiles import SourceKind, Tile, describe_tile

#: may the reader see this camera?
Visible = Callable[[str], Awaitable[bool]]
PLAYABLE_STATES = frozenset({ONLINE, DEGRADED})


#: an incident id -> the incident as the rules know it (all its cameras), or None
Known = Callable[[int | None], IncidentRef | None]


async def summary(wall: Wall, visible: Visible, known: Known) -> dict[str, Any]:
    """A wall in a list: its screens without their tiles."""
    can_see = _memo(visible)
    return {
        "id": wall.id,
        "name": wall.name,
        "version": wall.version,
        "screens": [
            _screen_head(s, await _incident_shown(s, known(s.state.incident), can_see))
            for s in wall.screens.values()
        ],
    }


def _memo(visible: Visible) -> Visible:
    seen: dict[str, bool] = {}

    async def can_see(camera: str) -> bool:
        if camera not in seen:
            seen[camera] = await visible(camera)
        return seen[camera]

    return can_see


async def _incident_shown(
    screen: Screen, incident: IncidentRef | None, can_see: Visible
) -> int | None:
    """The screen's incident id, if the reader sees at least one of its cameras:
    the id of an incident elsewhere in the city is not every reader's to know."""
    if screen.state.incident is None:
        return None
    if incident is None:  # not known to the rules yet: fail closed
        return None
    for camera in incident.camera_ids:
        if await can_see(camera):
            return screen.state.incident
    return None


def _screen_head(screen: Screen, incident: int | None) -> dict[str, Any]:
    state = screen.state
    head: dict[str, Any] = {
        "id": screen.id,
        "name": screen.name,
        "layout": state.shown.layout,
        "pinned": state.pinned,
        "incident": incident,
        "spotlight": state.rules.spotlight,
    }
    if state.previous is not None:
        head["previous_layout"] = state.previous.layout
    if screen.problem is not None:
        head["problem"] = screen.problem
    return head


async def describe(
    hub: Any,
    wall: Wall,
    visible: Visible,
    incident_of: Callable[[Screen], IncidentRef | None],
    known: Known,
) -> dict[str, Any]:
    """The wall's state for one reader (``visible`` is the reader's camera scope;
    ``incident_of`` the incident as a screen shows it, ``known`` all of it)."""
    can_see = _memo(visible)
    screens = []
    for screen in wall.screens.values():
        incident = incident_of(screen)
        tiles = [await _tile(hub, tile, incident, can_see) for tile in screen.tiles]
        full = known(screen.state.incident)
        head = _screen_head(screen, await _incident_shown(screen, full, can_see))
        screens.append({**head, "tiles": tiles})
    return {"id": wall.id, "name": wall.name, "version": wall.version, "screens": screens}


async def _tile(
    hub: Any, tile: Tile, incident: IncidentRef | None, can_see: Visible
) -> dict[str, Any]:
    data = dict(describe_tile(tile))
    source = dict(data["source"])
    kind = tile.source.kind
    out: dict[str, Any] = {**data, "camera": None, "stream": tile.source.stream}
    if kind is SourceKind.EMPTY:
        return {**out, "source": source, "playable": False}
    if kind is SourceKind.CAROUSEL:
        cameras = [c for c in tile.source.cameras if await can_see(c)]
        source["cameras"] = cameras
        out["source"] = source
        if not cameras:
            return {**out, "playable": False, "reason": "out_of_scope"}
        return {**out, "playable": True}
    camera = tile.source.camera
    if kind is SourceKind.INCIDENT:
        ids = incident.camera_ids if incident is not None else ()
        camera = ids[tile.source.slot] if tile.source.slot < len(ids) else None
    out["source"] = source
    if camera is None:
        return {**out, "playable": False, "reason": "no_camera"}
    if not await can_see(camera):
        source["camera"] = None
        return {**out, "playable": False, "reason": "out_of_scope"}
    out["camera"] = camera
    if kind is SourceKind.SNAPSHOT:  # a still picture: no codec to play
        reason = None if hub.cameras.states.get(camera) in PLAYABLE_STATES else "offline"
        return {**out, "playable": reason is None, **({"reason": reason} if reason else {})}
    reason = _unplayable(hub, camera, tile.source.stream)
    if reason == "h265":  # what the kiosk can play instead
        other = "sub" if tile.source.stream == "main" else None
        usable = other is not None and _unplayable(hub, camera, other) is None
        return {
            **out,
            "playable": False,
            "reason": reason,
            "fallback": other if usable else "snapshot",
        }
    if reason is not None:
        return {**out, "playable": False, "reason": reason}
    return {**out, "playable": True}


def _unplayable(hub: Any, camera: str, stream: str) -> str | None:
    """Why a camera in scope cannot play now: ``offline`` when the register does
    not say it is online; the live service may say more (``h265``) through its
    optional ``tile_problem(camera, stream)``; without it, ``h265`` when the
    camera's own description names that codec for the stream."""
    state = hub.cameras.states.get(camera)
    if state not in PLAYABLE_STATES:
        return "offline"
    live = getattr(hub, "live", None)
    problem = getattr(live, "tile_problem", None)
    if callable(problem):
        try:
            found = problem(camera, stream)
        except Exception:  # the live service's fault is not the wall's
            return None
        return str(found) if found else None
    return "h265" if known_codec(hub, camera, stream) in HEVC else None


def known_codec(hub: Any, camera: str, stream: str) -> str | None:
    """The codec the camera's driver described for ``stream`` (``h265``, ``h264``,
    as a folded family name), or None when nothing says. Drivers describe
    profiles (``{"profiles": [{"name", "codec", ...}]}``): the one named as
    the stream, else the first for ``main`` and the second for ``sub``."""
    device = getattr(getattr(hub, "cameras", None), "device_saved", {}).get(camera)
    profiles = device.get("profiles") if isinstance(device, dict) else None
    if not isinstance(profiles, list):
        return None
    profiles = [p for p in profiles if isinstance(p, dict)]
    named = [p for p in profiles if str(p.get("name", "")).lower() == stream]
    index = 0 if stream == "main" else 1
    chosen = named[0] if named else (profiles[index] if index < len(profiles) else None)
    codec = chosen.get("codec") if chosen else None
    if not isinstance(codec, str) or not codec:
        return None
    folded = codec.lower().replace(".", "").replace("-", "")
    if folded.startswith(("h265", "hevc", "hvc1", "hev1")):
        return "h265"
    if folded.startswith(("h264", "avc")):
        return "h264"
    return folded[:16]


#: what ``known_codec`` calls H.265
HEVC = frozenset({"h265"})
