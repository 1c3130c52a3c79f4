"""Tiny wall layouts registered through a pluggy plugin object, for the walls'
tests (independent of the bundled ``csuhub_walls`` layouts), and a site with
cameras at known places around Lille's Grand-Place."""

from __future__ import annotations

import math
from typing import Any

import voluptuous as vol
from still_camera import StillPlugin

from csuhub.api import (
    LayoutRequest,
    SourceKind,
    Tile,
    TileSource,
    WallLayoutSpec,
    hookimpl,
)


def grid_tiles(columns: int, rows: int, cameras: tuple[str, ...]) -> list[Tile]:
    tiles = []
    for index in range(columns * rows):
        x, y = index % columns, index // columns
        source = (
            TileSource(SourceKind.CAMERA, camera=cameras[index])
            if index < len(cameras)
            else TileSource()
        )
        tiles.append(Tile(x / columns, y / rows, 1 / columns, 1 / rows, source))
    return tiles


class Grid:
    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.columns, self.rows = options["columns"], options["rows"]

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        return grid_tiles(self.columns, self.rows, request.cameras)


class Spotlight:
    """Incident slots when an incident is on; the screen's cameras otherwise."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.count = options["tiles"]

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        side = math.ceil(math.sqrt(self.count))
        if request.incident is None:
            return grid_tiles(side, side, request.cameras)
        return [
            Tile(
                (i % side) / side,
                (i // side) / side,
                1 / side,
                1 / side,
                TileSource(SourceKind.INCIDENT, slot=i),
            )
            for i in range(self.count)
        ]


class Broken:
    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        pass

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        if request.cameras and request.cameras[0] == "boom":
            raise RuntimeError("the layout fell over")
        return grid_tiles(1, 1, request.cameras)


#: the wall rules' keys, which ``csuhub check`` validates with the layout's schema
RULES = {vol.Optional(k): object for k in ("spotlight", "hold", "timeout", "radius_m")}


class LayoutsPlugin:
    """A plugin object (pluggy) with the test layouts: ``grid``, ``spotlight``, ``broken``."""

    @hookimpl
    def register_wall_layouts(self, hub: Any) -> list[WallLayoutSpec]:
        return [
            WallLayoutSpec(
                name="grid",
                factory=Grid,
                config_schema=vol.Schema(
                    {
                        vol.Optional("columns", default=2): vol.All(int, vol.Range(1, 8)),
                        vol.Optional("rows", default=2): vol.All(int, vol.Range(1, 8)),
                        **RULES,
                    }
                ),
            ),
            WallLayoutSpec(
                name="spotlight",
                factory=Spotlight,
                config_schema=vol.Schema(
                    {vol.Optional("tiles", default=4): vol.All(int, vol.Range(1, 9)), **RULES}
                ),
            ),
            WallLayoutSpec(name="broken", factory=Broken, config_schema=vol.Schema(RULES)),
        ]


PLUGINS = [("test-layouts", LayoutsPlugin()), ("test-still", StillPlugin())]
ORIGIN = (50.6367, 3.0633)
#: id -> metres north of the origin, down?
CAMERAS = {"cam-a": (50.0, False), "cam-b": (120.0, False), "cam-c": (300.0, False)}
CAMERAS |= {"cam-d": (600.0, False), "cam-down": (30.0, True), "cam-far": (9000.0, False)}


def north(metres: float) -> tuple[float, float]:
    return ORIGIN[0] + metres / 111_195.0, ORIGIN[1]


def site(bundled: bool = False, **spotlight_options: Any) -> dict[str, Any]:
    """A wall ``mur``: a grid screen of cam-a and cam-b, and a spotlight screen
    idling on cam-d; a second wall ``poste`` with one grid screen. The bundled
    layouts (plugin ``walls``) are disabled unless ``bundled``: the test
    layouts take their names."""
    cameras = []
    for camera_id, (metres, down) in CAMERAS.items():
        lat, lon = north(metres)
        cameras.append(
            {
                "id": camera_id,
                "driver": "still",
                "options": {"down": down},
                "location": {"lat": lat, "lon": lon, "district": "Centre"},
            }
        )
    options = {"tiles": 4, **spotlight_options}
    return {
        "hub": {"timezone": "UTC"},
        "plugins": {"disabled": [] if bundled else ["walls"]},
        "cameras": cameras,
        "incidents": {"radius": 1000, "max_cameras": 3},
        "walls": [
            {
                "id": "mur",
                "name": "Mur",
                "screens": [
                    {"id": "s1", "layout": "grid", "cameras": ["cam-a", "cam-b"]},
                    {
                        "id": "spot",
                        "layout": "spotlight",
                        "cameras": ["cam-d"],
                        "options": options,
                    },
                ],
            },
            {
                "id": "poste",
                "screens": [{"id": "one", "layout": "grid", "cameras": ["cam-far"]}],
            },
        ],
    }
