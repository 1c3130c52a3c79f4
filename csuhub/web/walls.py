"""The video walls over the API (issue 14 §1, docs/walls.md).

Reading needs ``wall.view``: a scope naming walls (``wall:<id>``, a kiosk's)
sees only those, and every reader sees the tiles' cameras of its own camera
scope only (``out_of_scope`` otherwise, the id withheld). Changing needs
``wall.edit``, and the cameras given or pushed must be in the editor's scope
(404 otherwise, as for a camera that does not exist). The manager writes each
change with its audit entry in one transaction (``wall.set``, ``wall.pin``,
``wall.unpin``, ``wall.push``); a refused attempt is audited by the failure
middleware under the route's action.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csuhub.walls.groups import is_selector, members
from csuhub.walls.model import MAX_CAMERAS
from csuhub.walls.parse import MAX_OPTIONS, may_see_wall, parse_push, parse_screen
from csuhub.walls.screens import Wall, WallError
from csuhub.walls.tiles import MAX_TILES
from csuhub.walls.view import describe, summary
from csuhub.web.auditing import ENDED_KEY
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import Param
from csuhub.web.declare import endpoint as declare
from csuhub.web.requests import hub_of, json_body, json_error, path_slug
from csuhub.web.schemas import error, json_answer

routes = web.RouteTableDef()

SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
CAMERA_REF = {
    "type": "string",
    "pattern": "^([a-z0-9][a-z0-9_-]{0,62}|group:[a-z0-9][a-z0-9_-]{0,62}"
    "|district:[^\\x00-\\x1f\\x7f]{1,100})$",
}
WALL_ID = Param("wall", SLUG, where="path", description="a wall's id")
SCREEN_ID = Param("screen", SLUG, where="path", description="a screen's id in the wall")
_NULLABLE_TEXT = {"type": ["string", "null"]}
SOURCE = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"enum": ["camera", "snapshot", "carousel", "incident", "empty"]},
        "camera": _NULLABLE_TEXT,
        "stream": {"enum": ["sub", "main"]},
        "cameras": {"type": "array", "items": {"type": "string"}},
        "dwell": {"type": "number"},
        "slot": {"type": "integer"},
        "refresh": {
            "type": "number",
            "description": "snapshot: seconds between two JPEGs of GET "
            "/api/cameras/{camera}/snapshot.jpg (1-3600); 0 for the other kinds",
        },
    },
}
TILE = {
    "type": "object",
    "required": ["x", "y", "w", "h", "source", "camera", "stream", "playable"],
    "properties": {
        "x": {"type": "number"},
        "y": {"type": "number"},
        "w": {"type": "number"},
        "h": {"type": "number"},
        "source": SOURCE,
        "camera": {
            "type": ["string", "null"],
            "description": "the camera to play (an incident slot resolved); null for empty "
            "and carousel tiles, and for a camera outside the reader's scope",
        },
        "stream": {"enum": ["sub", "main"]},
        "playable": {"type": "boolean"},
        "reason": {
            "type": "string",
            "description": "why not playable: offline, out_of_scope, no_camera, h265...",
        },
        "fallback": {
            "enum": ["sub", "snapshot"],
            "description": "with reason h265: play the camera's sub-stream instead, or "
            "show snapshots",
        },
    },
}
SCREEN_HEAD = {
    "type": "object",
    "required": ["id", "name", "layout", "pinned", "incident"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "layout": {"type": "string"},
        "pinned": {"type": "boolean"},
        "incident": {
            "type": ["integer", "null"],
            "description": "the incident spotlighted; null too when none of its cameras is "
            "in the reader's scope",
        },
        "spotlight": {"type": "boolean", "description": "incidents may take the screen"},
        "previous_layout": {
            "type": "string",
            "description": "while an incident holds the screen: the layout it goes back to",
        },
        "problem": {"type": "string", "description": "why the layout could not answer"},
    },
}
SCREEN = {
    **SCREEN_HEAD,
    "required": [*SCREEN_HEAD["required"], "tiles"],
    "properties": {**SCREEN_HEAD["properties"], "tiles": {"type": "array", "items": TILE}},
}


def _wall_schema(screen: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "name", "version", "screens"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "version": {"type": "integer", "description": "counts every change of the wall"},
            "screens": {"type": "array", "items": screen},
        },
    }


WALL = _wall_schema(SCREEN)
SCREEN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "layout": {**SLUG, "description": "a registered wall layout"},
        "cameras": {
            "type": "array",
            "maxItems": MAX_CAMERAS,
            "items": CAMERA_REF,
            "description": "camera ids, or group:<group> / district:<district>: the site's "
            "cameras of that group or district, sorted by id (resolved again at each change "
            "and reload)",
        },
        "options": {
            "type": "object",
            "maxProperties": MAX_OPTIONS,
            "description": "the layout's options (and the rules': spotlight, hold, timeout, "
            "radius_m); without it, a new layout gets its defaults",
        },
        "pinned": {"type": "boolean", "description": "a pinned screen is never taken"},
    },
}
PUSH_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["camera"],
    "properties": {
        "camera": SLUG,
        "screen": {**SLUG, "description": "default: the first free screen with an empty tile"},
        "tile": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_TILES - 1,
            "description": "default: the screen's first empty tile; only with screen",
        },
    },
}
_STATUS = {
    "invalid": web.HTTPBadRequest,
    "not_found": web.HTTPNotFound,
    "conflict": web.HTTPConflict,
}
_CHANGE = {
    400: error("The body is refused (the field says which)"),
    404: error("No such wall, screen or camera (or not one in the caller's scope)"),
}


def _refused(err: WallError) -> web.HTTPException:
    extra = {"field": err.field} if err.field else {}
    return json_error(str(err), _STATUS.get(err.kind, web.HTTPBadRequest), **extra)


def wall_of(request: web.Request) -> Wall:
    """The path's wall, if the caller may see it (404 otherwise, as for none)."""
    wall_id = path_slug(request, "wall", "wall")
    walls = getattr(hub_of(request), "walls", None)
    found = None if walls is None else walls.walls.get(wall_id)
    if found is None or not may_see_wall(request[PRINCIPAL_KEY], wall_id):
        raise json_error("no such wall", web.HTTPNotFound)
    return found


async def wall_shown(request: web.Request, wall: Wall) -> dict[str, Any]:
    """The wall as the caller may see it: tiles of cameras outside its scope are
    left empty (the API's answer and the panel's page are this one view)."""
    manager = hub_of(request).walls  # type: ignore[attr-defined]
    return await describe(
        hub_of(request),
        wall,
        lambda c: camera_visible(request, c),
        manager.shown_incident,
        manager.incident_ref,
    )


async def _camera(request: web.Request, camera: str, field: str = "camera") -> None:
    """404 unless the camera exists on this hub and is in the caller's scope."""
    hub = hub_of(request)
    known = hub.config.settings.camera(camera) is not None or camera in hub.cameras.states
    if not known or not await camera_visible(request, camera):
        raise json_error("no such camera", web.HTTPNotFound, field=field)


async def visible_sources(request: web.Request, sources: tuple[str, ...]) -> list[str]:
    """Of a screen's given sources (camera ids, ``group:``/``district:``
    selectors), those the caller may see: a selector only when every camera it
    names is in scope (the rule :func:`_selection` enforces on a change), so an
    editor's form never shows, nor sends back, what it may not put on a wall."""
    manager = hub_of(request).walls  # type: ignore[attr-defined]
    kept = []
    for source in sources:
        named = members(source, manager.placements) if is_selector(source) else [source]
        if named and all([await camera_visible(request, c) for c in named]):
            kept.append(source)
    return kept


async def _selection(request: web.Request, selector: str) -> None:
    """404 unless a group or district selector names cameras, all in the caller's
    scope (an editor cannot put on a wall what it may not see)."""
    manager = hub_of(request).walls  # type: ignore[attr-defined]
    found = members(selector, manager.placements)
    if not found:
        raise json_error(f"no camera in {selector}", web.HTTPNotFound, field="cameras")
    for camera in found:
        if not await camera_visible(request, camera):
            raise json_error(
                f"{selector} holds cameras outside your scope", web.HTTPNotFound, field="cameras"
            )


@routes.get("/api/walls")
@declare(
    "wall.view",
    tags=("walls",),
    responses={
        200: json_answer(
            "The walls the caller may see, their screens without tiles",
            {
                "type": "object",
                "required": ["walls"],
                "properties": {"walls": {"type": "array", "items": _wall_schema(SCREEN_HEAD)}},
            },
        )
    },
)
async def list_walls(request: web.Request) -> web.Response:
    """The walls: screens, layouts, pins and the incidents they spotlight."""
    manager = getattr(hub_of(request), "walls", None)
    who = request[PRINCIPAL_KEY]
    walls = [] if manager is None else list(manager.walls.values())
    return web.json_response(
        {
            "walls": [
                await summary(w, lambda c: camera_visible(request, c), manager.incident_ref)
                for w in walls
                if may_see_wall(who, w.id)
            ]
        }
    )


@routes.get("/api/walls/{wall}")
@declare(
    "wall.view",
    tags=("walls",),
    params=(WALL_ID,),
    responses={200: json_answer("The wall, its tiles resolved", WALL), 404: error("No such wall")},
)
async def get_wall(request: web.Request) -> web.Response:
    """One wall as a kiosk renders it: each screen's tiles, their sources resolved
    to cameras (within the caller's scope), playable or not and why."""
    return web.json_response(await wall_shown(request, wall_of(request)))


@routes.post("/api/walls/{wall}/screens/{screen}")
@declare(
    "wall.edit",
    tags=("walls",),
    audited="wall.set",
    params=(WALL_ID, SCREEN_ID),
    body=SCREEN_BODY,
    body_required=True,
    responses={200: json_answer("The wall after the change", WALL), **_CHANGE},
)
async def set_screen(request: web.Request) -> web.Response:
    """Give a screen a layout, cameras and options, or pin or unpin it.

    A new layout, cameras or options end an incident's hold on the screen; a
    pinned screen is never taken by an incident. Audited as ``wall.set``
    (``wall.pin``/``wall.unpin`` when only ``pinned`` is given)."""
    wall = wall_of(request)
    screen_id = path_slug(request, "screen", "screen")
    try:
        change = parse_screen(await json_body(request))
        wall.screen(screen_id)
    except WallError as err:
        raise _refused(err) from None
    for camera in change.cameras or ():
        if is_selector(camera):
            await _selection(request, camera)
        else:
            await _camera(request, camera, "cameras")
    try:
        await hub_of(request).walls.set_screen(  # type: ignore[attr-defined]
            wall.id,
            screen_id,
            request[PRINCIPAL_KEY],
            layout=change.layout,
            cameras=change.cameras,
            options=change.options,
            pinned=change.pinned,
        )
    except WallError as err:
        raise _refused(err) from None
    request[ENDED_KEY] = True  # the manager wrote the entry with the change
    return web.json_response(await wall_shown(request, wall))


@routes.post("/api/walls/{wall}/push")
@declare(
    "wall.edit",
    tags=("walls",),
    audited="wall.push",
    params=(WALL_ID,),
    body=PUSH_BODY,
    body_required=True,
    responses={
        200: json_answer(
            "Where the camera went, and the wall after the change",
            {
                "type": "object",
                "required": ["screen", "tile", "wall"],
                "properties": {
                    "screen": {"type": "string"},
                    "tile": {"type": "integer"},
                    "wall": WALL,
                },
            },
        ),
        409: error("No empty tile to put the camera on"),
        **_CHANGE,
    },
)
async def push_camera(request: web.Request) -> web.Response:
    """Put a camera on a tile: the named one, or the first empty tile of the named
    screen, or of the first screen that is neither pinned nor spotlighting."""
    wall = wall_of(request)
    try:
        push = parse_push(await json_body(request))
        if push.screen is not None:
            wall.screen(push.screen)
    except WallError as err:
        raise _refused(err) from None
    await _camera(request, push.camera)
    try:
        _, screen, tile = await hub_of(request).walls.push(  # type: ignore[attr-defined]
            wall.id, push.camera, request[PRINCIPAL_KEY], screen_id=push.screen, tile=push.tile
        )
    except WallError as err:
        raise _refused(err) from None
    request[ENDED_KEY] = True
    shown = await wall_shown(request, wall)
    return web.json_response({"screen": screen, "tile": tile, "wall": shown})
