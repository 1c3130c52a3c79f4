"""An example csuhub wall layout: one camera across the top of the screen and
a strip of small ones beneath it (a desk screen that follows one place and
keeps an eye on its surroundings)::

    +---------------------------+
    |                           |
    |             0             |   3/4 of the height
    |                           |
    +------+------+------+------+
    |  1   |  2   |  3   |  4   |   ``strip`` tiles (4 by default)
    +------+------+------+------+

Layout names are site-file identifiers: ``layout: example_strip``. The layout
imports nothing but ``csuhub.api`` and is a pure function of the request: no
I/O, no state between calls, so its tests need no hub.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from csuhub.api import LayoutRequest, SourceKind, Tile, TileSource, WallLayoutSpec, hookimpl

#: the top tile's share of the screen's height
TOP = 0.75

OPTIONS = vol.Schema(
    {
        vol.Optional("strip", default=4): vol.All(
            int, vol.Range(min=1, max=8, msg="strip is 1 to 8 tiles")
        ),
        # the top tile is big enough to deserve the camera's main stream
        vol.Optional("top_stream", default="main"): vol.In(("sub", "main")),
    }
)


class StripLayout:
    """``factory(hub, options)``: the hub calls it once per screen using the
    layout, with the screen's ``options`` already validated by ``OPTIONS``."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        # keep the options, not the hub: tiles() must not depend on live state
        self.strip: int = options["strip"]
        self.top_stream: str = options["top_stream"]

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        sources = self.sources(request, 1 + self.strip)
        top = sources[0]
        if top.kind is not SourceKind.EMPTY:
            top = TileSource(top.kind, camera=top.camera, stream=self.top_stream, slot=top.slot)
        tiles = [Tile(0.0, 0.0, 1.0, TOP, top)]
        for i in range(self.strip):
            # edges from the index, not summed widths: the last tile ends at exactly 1.0
            x0, x1 = i / self.strip, (i + 1) / self.strip
            tiles.append(Tile(x0, TOP, x1 - x0, 1.0 - TOP, sources[1 + i]))
        return tiles

    @staticmethod
    def sources(request: LayoutRequest, count: int) -> list[TileSource]:
        """``count`` sources: the incident's nearest cameras as slots (the wall
        manager resolves a slot to the camera) when the screen spotlights one,
        else the screen's cameras, each once; empty tiles pad."""
        found: list[TileSource] = []
        if request.incident is not None:
            seen: set[str] = set()
            for slot, camera in enumerate(request.incident.cameras):
                if camera.id not in seen and len(found) < count:
                    seen.add(camera.id)
                    found.append(TileSource(SourceKind.INCIDENT, slot=slot))
        else:
            for camera_id in list(dict.fromkeys(request.cameras))[:count]:
                found.append(TileSource(SourceKind.CAMERA, camera=camera_id))
        return found + [TileSource()] * (count - len(found))


@hookimpl
def register_wall_layouts(hub: Any) -> list[WallLayoutSpec]:
    return [
        WallLayoutSpec(
            name="example_strip",
            factory=StripLayout,
            config_schema=OPTIONS,
            description="one camera across the top, a strip of small ones beneath (example)",
        )
    ]
