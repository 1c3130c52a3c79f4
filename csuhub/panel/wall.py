"""The panel's wall page (see docs/panel.md): the walls and screens one may see,
the chosen screen's tiles playing live, and for ``wall.edit`` the editor.

The page reads the walls through the same functions as ``GET /api/walls``
(:mod:`csuhub.web.walls`: the reader's wall and camera scopes apply), and its
module plays the tiles with the kiosk's own ``player.js`` (served from
``/static/kiosk/<version>/``), follows ``wall.changed`` over ``/api/events``
and changes the wall through ``POST /api/walls/...``. No iframe: the kiosk
page forbids framing, and the panel would not want a second session in it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, page
from csuhub.walls.parse import may_see_wall
from csuhub.walls.screens import Wall
from csuhub.walls.view import summary
from csuhub.web.auth import PRINCIPAL_KEY, camera_visible
from csuhub.web.declare import endpoint
from csuhub.web.kiosk import assets_version as kiosk_version
from csuhub.web.requests import hub_of, json_error
from csuhub.web.walls import SCREEN_ID, WALL_ID, visible_sources, wall_of, wall_shown

routes = web.RouteTableDef()

PAGE = {200: ("The page", HTML, None), 404: ("No such wall or screen", HTML, None)}


def _walls(request: web.Request) -> list[Wall]:
    manager = getattr(hub_of(request), "walls", None)
    who = request[PRINCIPAL_KEY]
    found = [] if manager is None else list(manager.walls.values())
    return [w for w in found if may_see_wall(who, w.id)]


async def _cameras(request: web.Request) -> list[str]:
    """The cameras the editor may put on a tile: known to the hub, in its scope."""
    hub = hub_of(request)
    known = {c.id for c in hub.config.settings.cameras} | set(hub.cameras.states)
    return [c for c in sorted(known) if await camera_visible(request, c)]


def _layouts(request: web.Request) -> list[str]:
    return sorted(hub_of(request).registry.wall_layouts.names())


async def _render(request: web.Request, wall: Wall | None, screen_id: str | None) -> web.Response:
    manager = getattr(hub_of(request), "walls", None)
    walls = [
        await summary(w, lambda c: camera_visible(request, c), manager.incident_ref)
        for w in _walls(request)
    ]
    values: dict[str, Any] = {
        "walls": walls,
        "wall": None,
        "screen": None,
        "player": f"/static/kiosk/{kiosk_version()}/player.js",
        "editor": request[PRINCIPAL_KEY].has("wall.edit"),
        "layouts": [],
        "cameras": [],
    }
    if wall is not None and screen_id is not None:
        shown = await wall_shown(request, wall)
        screen = next(s for s in shown["screens"] if s["id"] == screen_id)
        base = wall.screens[screen_id].state.base
        screen["given"] = ", ".join(await visible_sources(request, tuple(base.cameras)))
        values.update(wall=shown, screen=screen)
        if values["editor"]:
            values.update(layouts=_layouts(request), cameras=await _cameras(request))
    return page(request, "wall/view.html", values)


@routes.get("/panel/wall")
@endpoint("wall.view", tags=("panel",), params=(LANG,), responses=PAGE)
async def view(request: web.Request) -> web.Response:
    """The walls one may see and the first wall's first screen, playing."""
    walls = _walls(request)
    first = next((w for w in walls if w.screens), None)
    return await _render(request, first, None if first is None else next(iter(first.screens)))


@routes.get("/panel/wall/{wall}/{screen}")
@endpoint("wall.view", tags=("panel",), params=(WALL_ID, SCREEN_ID, LANG), responses=PAGE)
async def view_screen(request: web.Request) -> web.Response:
    """One screen of a wall, playing live; the editor for ``wall.edit``."""
    wall = wall_of(request)  # 404 unless the reader may see it
    screen_id = request.match_info["screen"]
    if screen_id not in wall.screens:
        raise json_error("no such screen", web.HTTPNotFound)
    return await _render(request, wall, screen_id)
