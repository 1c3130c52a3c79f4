"""The example layout's tests: plain functions on the layout, plus the kit's
checks and a real hub. Run them with ``pytest`` once the package is installed
(``pip install -e .``); csuhub's own suite imports this file from its source."""

from __future__ import annotations

import math
from typing import Any

import csuhub_example_layout
import pytest
import voluptuous as vol
from csuhub_example_layout import OPTIONS, StripLayout

from csuhub.api import (
    IncidentRef,
    LayoutRequest,
    LinkedCamera,
    Priority,
    SourceKind,
    WallLayout,
    check_tiles,
)
from csuhub.testing import validate_plugin


def make(**options: Any) -> StripLayout:
    return StripLayout(None, OPTIONS(options))  # as the hub does: validate, then build


def test_example_layout_passes_the_kit_checks() -> None:
    assert validate_plugin(csuhub_example_layout) == []
    assert isinstance(make(), WallLayout)


def test_example_layout_places_the_top_and_the_strip() -> None:
    tiles = make(strip=3).tiles(LayoutRequest("desk", "main", ("a", "b", "c", "d", "e")))
    check_tiles(tiles)  # within the screen, no overlap: the hub checks every answer so
    assert math.isclose(sum(t.w * t.h for t in tiles), 1.0)  # and nothing left uncovered
    assert [(t.x, t.y, t.w, t.h) for t in tiles[:2]] == [(0, 0, 1, 0.75), (0, 0.75, 1 / 3, 0.25)]
    assert [t.source.camera for t in tiles] == ["a", "b", "c", "d"]  # "e" does not fit
    assert [t.source.stream for t in tiles] == ["main", "sub", "sub", "sub"]


def test_example_layout_pads_with_empty_tiles_and_shows_a_camera_once() -> None:
    tiles = make().tiles(LayoutRequest("desk", "main", ("a", "b", "a")))
    assert [str(t.source.kind) for t in tiles] == ["camera", "camera", "empty", "empty", "empty"]


def test_example_layout_follows_an_incident() -> None:
    incident = IncidentRef(
        1,
        "fight",
        Priority.HIGH,
        1_700_000_000.0,
        cameras=(LinkedCamera("near", 40.0), LinkedCamera("far", 180.0)),
    )
    tiles = make(strip=2).tiles(LayoutRequest("desk", "main", ("a",), incident))
    assert [(t.source.kind, t.source.slot) for t in tiles] == [
        (SourceKind.INCIDENT, 0),  # the nearest on top
        (SourceKind.INCIDENT, 1),
        (SourceKind.EMPTY, 0),
    ]


def test_example_layout_refuses_bad_options() -> None:
    with pytest.raises(vol.Invalid, match="strip is 1 to 8 tiles"):
        OPTIONS({"strip": 12})
    with pytest.raises(vol.Invalid, match="extra keys"):
        OPTIONS({"columns": 2})


async def test_example_layout_in_a_hub(hub_factory: Any) -> None:
    plugin = [("example-layout", csuhub_example_layout)]
    async with hub_factory(plugins=plugin, load_entrypoints=False) as hub:
        spec = hub.registry.wall_layouts.get("example_strip")
        assert hub.registry.wall_layouts.plugin_of("example_strip") == "example-layout"
        layout = spec.factory(hub, spec.config_schema({"strip": 2}))
        assert len(check_tiles(layout.tiles(LayoutRequest("desk", "main", ("a",))))) == 3
