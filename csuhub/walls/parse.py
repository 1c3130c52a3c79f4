"""What operators send to change a wall, checked before anything acts on it,
and who may see which wall.

The bodies are parsed whole here (pure functions: a property test feeds them
anything), so a handler only ever sees a :class:`ScreenChange` or a
:class:`Push` whose every field is of its type and within its bounds; a
refusal is a ``WallError`` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from csuhub.security.permissions import Principal
from csuhub.walls.groups import DISTRICT, GROUP
from csuhub.walls.model import MAX_CAMERAS
from csuhub.walls.screens import WallError
from csuhub.walls.tiles import MAX_TILES

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

SCREEN_FIELDS = frozenset({"layout", "cameras", "options", "pinned"})
PUSH_FIELDS = frozenset({"camera", "screen", "tile"})
#: keys of one screen's options (a layout takes a handful)
MAX_OPTIONS = 32


@dataclass(frozen=True, slots=True)
class ScreenChange:
    layout: str | None = None
    cameras: tuple[str, ...] | None = None
    options: dict[str, Any] | None = None
    pinned: bool | None = None


@dataclass(frozen=True, slots=True)
class Push:
    camera: str
    screen: str | None = None
    tile: int | None = None


def _unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(str(k) for k in body if k not in allowed)
    if extra:
        raise WallError(f"unknown field {extra[0]!r}", field=extra[0][:64])


def _slug(value: Any, field: str) -> str:
    if not isinstance(value, str) or _SLUG.fullmatch(value) is None:
        raise WallError(f"{field} must be an identifier (a-z, 0-9, '-', '_')", field=field)
    return value


def camera_ref(value: Any, field: str = "cameras") -> str:
    """A camera id, or a selector of the site's cameras: ``group:<group id>`` or
    ``district:<district name>`` (1 to 100 printable characters)."""
    if isinstance(value, str) and value.startswith(GROUP):
        return GROUP + _slug(value[len(GROUP) :], field)
    if isinstance(value, str) and value.startswith(DISTRICT):
        name = value[len(DISTRICT) :].strip()
        if not 0 < len(name) <= 100 or not name.isprintable():
            raise WallError("a district: selector names a district (100 characters)", field=field)
        return DISTRICT + name
    return _slug(value, field)


def parse_screen(body: Mapping[str, Any]) -> ScreenChange:
    """``{layout?, cameras?, options?, pinned?}``, at least one of them."""
    _unknown(body, SCREEN_FIELDS)
    if not any(k in body for k in SCREEN_FIELDS):
        raise WallError("give layout, cameras, options or pinned")
    layout = None if body.get("layout") is None else _slug(body["layout"], "layout")
    cameras = None
    if body.get("cameras") is not None:
        raw = body["cameras"]
        if not isinstance(raw, list) or len(raw) > MAX_CAMERAS:
            raise WallError(f"cameras is a list of at most {MAX_CAMERAS} ids", field="cameras")
        cameras = tuple(camera_ref(c) for c in raw)
    options = None
    if body.get("options") is not None:
        raw_options = body["options"]
        if not isinstance(raw_options, dict) or len(raw_options) > MAX_OPTIONS:
            raise WallError(f"options is an object of at most {MAX_OPTIONS} keys", field="options")
        options = {str(k): v for k, v in raw_options.items()}
        for key in options:
            _slug(key, "options")
    pinned = body.get("pinned")
    if pinned is not None and not isinstance(pinned, bool):
        raise WallError("pinned must be true or false", field="pinned")
    return ScreenChange(layout, cameras, options, pinned)


def parse_push(body: Mapping[str, Any]) -> Push:
    """``{camera, screen?, tile?}``; ``tile`` only with ``screen``."""
    _unknown(body, PUSH_FIELDS)
    if "camera" not in body:
        raise WallError("camera is required", field="camera")
    camera = _slug(body["camera"], "camera")
    screen = None if body.get("screen") is None else _slug(body["screen"], "screen")
    tile = body.get("tile")
    if tile is not None and (
        isinstance(tile, bool) or not isinstance(tile, int) or not 0 <= tile < MAX_TILES
    ):
        raise WallError(f"tile is a tile index, 0 to {MAX_TILES - 1}", field="tile")
    if tile is not None and screen is None:  # a tile of which screen? never a guess
        raise WallError("tile needs the screen it is on", field="tile")
    return Push(camera, screen, tile)


def named_walls(principal: Principal) -> frozenset[str]:
    return frozenset(
        s.partition(":")[2] for s in principal.scope.selectors if s.startswith("wall:")
    )


def may_see_wall(principal: Principal, wall_id: str) -> bool:
    """A scope naming walls (``wall:<id>``) sees only those; a ``wall`` role (a
    kiosk) whose scope names none sees none; anyone else with ``wall.view``
    sees every wall (its tiles still limited to the cameras in its scope)."""
    if principal.scope.everything:
        return True
    named = named_walls(principal)
    if named:
        return wall_id in named
    return "wall" not in principal.roles
