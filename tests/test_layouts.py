"""The bundled wall layouts (plugins/csuhub_walls): geometry, sources, options.

Geometry is checked as the wall manager checks it (``check_tiles``: within the
screen, no overlap) plus full coverage, which every bundled arrangement
promises. Sources are checked against the two rules of docs/layouts.md: an
incident replaces the screen's cameras with its nearest as slots, and no
camera shows twice on a screen at any moment.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import csuhub_walls
import pytest
import voluptuous as vol
from csuhub_walls import geometry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.api import (
    IncidentRef,
    LayoutRequest,
    LinkedCamera,
    Priority,
    SourceKind,
    Tile,
    TileSource,
    WallLayoutSpec,
    check_tiles,
)
from csuhub.blueprint.loader import BlueprintLoader
from csuhub.blueprint.selectors import SelectorContext
from csuhub.config.issues import ConfigInvalid
from csuhub.config.schema import CORE_SCHEMAS
from csuhub.hub import Hub
from csuhub.testing import validate_plugin
from csuhub.walls.tiles import describe_tile

SPECS: dict[str, WallLayoutSpec] = {s.name: s for s in csuhub_walls.register_wall_layouts(None)}
NAMES = sorted(SPECS)


def layout(name: str, **options: Any) -> Any:
    spec = SPECS[name]
    return spec.factory(None, spec.config_schema(options))


def request(cameras: Any = (), incident: IncidentRef | None = None) -> LayoutRequest:
    return LayoutRequest("mur", "ecran-1", tuple(cameras), incident)


def incident(*cameras: str) -> IncidentRef:
    linked = tuple(LinkedCamera(c, distance_m=10.0 * i) for i, c in enumerate(cameras))
    return IncidentRef(7, "fight", Priority.HIGH, 1_700_000_000.0, cameras=linked)


def cams(n: int) -> list[str]:
    return [f"cam-{i}" for i in range(n)]


def area(tiles: list[Tile]) -> float:
    return math.fsum(t.w * t.h for t in tiles)


def shown(tiles: list[Tile]) -> list[str]:
    """Every camera a screen may show, each tile's share (carousels whole)."""
    out: list[str] = []
    for t in tiles:
        if t.source.kind in (SourceKind.CAMERA, SourceKind.SNAPSHOT):
            out.append(t.source.camera)
        out.extend(t.source.cameras)
    return out


def kinds(tiles: list[Tile]) -> list[str]:
    return [str(t.source.kind) for t in tiles]


# --- registration --------------------------------------------------------------------


def test_registered_names_are_slugs_and_pass_the_kit() -> None:
    assert NAMES == [
        "carousel",
        "grid",
        "incident_spotlight",
        "one_plus_12",
        "one_plus_5",
        "one_plus_7",
        "one_plus_n",
        "spotlight",
    ]
    assert validate_plugin(csuhub_walls) == []
    for spec in SPECS.values():
        assert spec.description


async def test_the_plugin_loads_through_its_entry_point(hub_factory: Any) -> None:
    async with hub_factory() as hub:
        assert set(NAMES) <= set(hub.registry.wall_layouts.names())
        assert hub.registry.wall_layouts.plugin_of("grid") == "walls"
        spec = hub.registry.wall_layouts.get("spotlight")
        made = spec.factory(hub, spec.config_schema({}))
        assert check_tiles(made.tiles(request(["cam-a"])))


def test_incident_spotlight_is_an_alias_of_spotlight() -> None:
    a, b = SPECS["spotlight"], SPECS["incident_spotlight"]
    assert a.factory is b.factory and a.config_schema is b.config_schema
    req = request(["idle"], incident("n1", "n2", "n3"))
    assert layout("spotlight").tiles(req) == layout("incident_spotlight").tiles(req)


# --- geometry ------------------------------------------------------------------------


@pytest.mark.parametrize("columns", range(1, 9))
@pytest.mark.parametrize("rows", range(1, 9))
def test_a_grid_covers_the_screen_row_major(columns: int, rows: int) -> None:
    tiles = layout("grid", columns=columns, rows=rows).tiles(request(cams(columns * rows)))
    check_tiles(tiles)
    assert len(tiles) == columns * rows
    assert math.isclose(area(tiles), 1.0, abs_tol=1e-9)
    for i, t in enumerate(tiles):
        assert math.isclose(t.x, (i % columns) / columns, abs_tol=1e-12)
        assert math.isclose(t.y, (i // columns) / rows, abs_tol=1e-12)
        assert math.isclose(t.w, 1 / columns) and math.isclose(t.h, 1 / rows)
        assert t.x + t.w <= 1.0 and t.y + t.h <= 1.0  # exact, not merely within eps
    assert shown(tiles) == cams(columns * rows)


@pytest.mark.parametrize(
    ("count", "shape"),
    [(0, (1, 1)), (1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (5, (3, 2)),
     (7, (3, 3)), (9, (3, 3)), (10, (4, 3)), (13, (4, 4)), (64, (8, 8)), (500, (8, 8))],
)  # fmt: skip
def test_a_grid_without_a_size_is_derived_from_the_cameras(
    count: int, shape: tuple[int, int]
) -> None:
    assert geometry.grid_for(count) == shape
    tiles = layout("grid").tiles(request(cams(count)))
    assert len(tiles) == shape[0] * shape[1]
    assert math.isclose(area(tiles), 1.0)


def test_a_grid_with_one_side_derives_the_other() -> None:
    assert len(layout("grid", columns=4).tiles(request(cams(9)))) == 12  # 4x3
    assert len(layout("grid", rows=2).tiles(request(cams(9)))) == 10  # 5x2
    assert len(layout("grid", columns=2).tiles(request(cams(40)))) == 16  # capped at 8 rows
    assert len(layout("grid", rows=3).tiles(request([]))) == 3  # 1x3, empty


@pytest.mark.parametrize(
    ("n", "units", "big"),
    [(5, 3, (0, 0, 2, 2)), (7, 4, (0, 0, 3, 3)), (12, 4, (1, 1, 2, 2))],
)
def test_one_plus_n_arrangements(n: int, units: int, big: tuple[int, ...]) -> None:
    for tiles in (
        layout(f"one_plus_{n}").tiles(request(cams(n + 1))),
        layout("one_plus_n", n=n).tiles(request(cams(n + 1))),
    ):
        check_tiles(tiles)
        assert len(tiles) == n + 1
        assert math.isclose(area(tiles), 1.0, abs_tol=1e-9)
        first = tiles[0]
        got = tuple(round(v * units) for v in (first.x, first.y, first.w, first.h))
        assert got == big
        assert all(math.isclose(t.w * t.h, 1 / units**2) for t in tiles[1:])
        assert shown(tiles) == cams(n + 1)  # the first camera in the big tile
        # small tiles read row-major
        assert [(t.y, t.x) for t in tiles[1:]] == sorted((t.y, t.x) for t in tiles[1:])


@pytest.mark.parametrize("count", range(1, 10))
def test_spotlight_puts_the_nearest_in_the_biggest_tile(count: int) -> None:
    names = [f"near-{i}" for i in range(count)]
    tiles = layout("spotlight", tiles=9).tiles(request(["idle"], incident(*names)))
    check_tiles(tiles)
    assert math.isclose(area(tiles), 1.0, abs_tol=1e-9)
    slots = [t for t in tiles if t.source.kind is SourceKind.INCIDENT]
    assert [t.source.slot for t in slots] == list(range(count))  # nearest first
    areas = [t.w * t.h for t in slots]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(areas))  # largest first
    assert all(t.source.kind is SourceKind.EMPTY for t in tiles[count:])
    expected = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 6, 7: 8, 8: 8, 9: 9}
    assert len(tiles) == expected[count]
    if count in (1, 3, 5, 6, 7, 8):  # those with a big tile: strictly the biggest
        assert areas[0] > max(areas[1:], default=0)


def test_spotlight_shows_at_most_tiles_nearest_cameras() -> None:
    tiles = layout("spotlight").tiles(request([], incident(*cams(12))))
    assert [t.source.slot for t in tiles] == [0, 1, 2, 3]  # default 4: a 2x2
    tiles = layout("spotlight", tiles=6).tiles(request([], incident(*cams(12))))
    assert [t.source.slot for t in tiles] == list(range(6))  # a 1+5
    assert math.isclose(tiles[0].w, 2 / 3)


def test_spotlight_without_an_incident_shows_the_idle_cameras_as_a_grid() -> None:
    tiles = layout("incident_spotlight").tiles(request(cams(3)))
    assert kinds(tiles) == ["camera", "camera", "camera", "empty"]
    tiles = layout("spotlight", columns=3, rows=3, dwell="20s").tiles(request(cams(12)))
    assert len(tiles) == 9 and sorted(shown(tiles)) == sorted(cams(12))
    assert layout("spotlight").tiles(request()) == [Tile(0.0, 0.0, 1.0, 1.0)]


def test_an_incident_with_no_camera_yet_is_one_empty_tile() -> None:
    tiles = layout("spotlight").tiles(request(cams(4), incident()))
    assert tiles == [Tile(0.0, 0.0, 1.0, 1.0)]


# --- sources -------------------------------------------------------------------------


def test_missing_cameras_leave_empty_tiles() -> None:
    tiles = layout("grid", columns=2, rows=2).tiles(request(["a", "b", "c"]))
    assert kinds(tiles) == ["camera", "camera", "camera", "empty"]
    assert [t.source.camera for t in tiles] == ["a", "b", "c", None]
    assert all(t.source.stream == "sub" for t in tiles)


def test_without_dwell_the_cameras_beyond_the_grid_are_not_shown() -> None:
    tiles = layout("grid", columns=2, rows=2).tiles(request(cams(7)))
    assert shown(tiles) == cams(4)
    assert set(kinds(tiles)) == {"camera"}


def test_with_dwell_the_cameras_beyond_the_grid_rotate_by_page() -> None:
    tiles = layout("grid", columns=2, rows=2, dwell="20s").tiles(request(cams(10)))
    sources = [t.source for t in tiles]
    assert [s.cameras for s in sources] == [
        ("cam-0", "cam-4", "cam-8"),
        ("cam-1", "cam-5", "cam-9"),
        ("cam-2", "cam-6"),
        ("cam-3", "cam-7"),
    ]
    assert all(s.kind is SourceKind.CAROUSEL and s.dwell == 20.0 for s in sources)
    # a tile whose share is one camera shows it plainly
    tiles = layout("grid", columns=2, rows=2, dwell=30).tiles(request(cams(5)))
    assert kinds(tiles) == ["carousel", "camera", "camera", "camera"]
    assert tiles[0].source.cameras == ("cam-0", "cam-4")


def test_a_camera_listed_twice_is_shown_once() -> None:
    tiles = layout("grid", columns=2, rows=2).tiles(request(["a", "b", "a", "c", "b"]))
    assert shown(tiles) == ["a", "b", "c"]
    spot = layout("spotlight").tiles(request([], incident("x", "y", "x", "z")))
    assert [t.source.slot for t in spot] == [0, 1, 3]  # the second "x" gets no slot


def test_carousel_cycles_the_list_in_one_tile() -> None:
    tiles = layout("carousel", dwell="15s").tiles(request(cams(5)))
    assert len(tiles) == 1 and tiles[0] == Tile(0.0, 0.0, 1.0, 1.0, tiles[0].source)
    assert tiles[0].source.cameras == tuple(cams(5)) and tiles[0].source.dwell == 15.0
    assert layout("carousel").tiles(request(cams(2)))[0].source.dwell == 10.0  # default
    assert kinds(layout("carousel").tiles(request(["a"]))) == ["camera"]
    assert kinds(layout("carousel").tiles(request())) == ["empty"]
    tiles = layout("carousel", columns=2, rows=1, dwell=5).tiles(request(cams(5)))
    assert [t.source.cameras for t in tiles] == [("cam-0", "cam-2", "cam-4"), ("cam-1", "cam-3")]


def test_one_plus_n_keeps_the_first_camera_big_and_rotates_the_others() -> None:
    tiles = layout("one_plus_5", dwell="10s", big_stream="main").tiles(request(cams(11)))
    assert tiles[0].source.camera == "cam-0" and tiles[0].source.stream == "main"
    assert [t.source.cameras for t in tiles[1:]] == [
        ("cam-1", "cam-6"),
        ("cam-2", "cam-7"),
        ("cam-3", "cam-8"),
        ("cam-4", "cam-9"),
        ("cam-5", "cam-10"),
    ]
    assert all(t.source.stream == "sub" for t in tiles[1:])
    tiles = layout("one_plus_7").tiles(request(["a"]))
    assert kinds(tiles) == ["camera"] + ["empty"] * 7
    assert layout("one_plus_12", stream="main").tiles(request(["a"]))[0].source.stream == "main"


def test_an_incident_fills_any_layout_with_its_nearest_as_slots() -> None:
    near = incident("n0", "n1", "n2", "n3", "n4", "n5", "n6")
    tiles = layout("one_plus_5").tiles(request(cams(6), near))
    assert [t.source.slot for t in tiles] == [0, 1, 2, 3, 4, 5]
    assert set(kinds(tiles)) == {"incident"}
    tiles = layout("grid", columns=2, rows=2).tiles(request(cams(3), near))
    assert [t.source.slot for t in tiles] == [0, 1, 2, 3]
    tiles = layout("grid", tiles=2).tiles(request(cams(3), near))  # derived from 2 slots
    assert [t.source.slot for t in tiles] == [0, 1] and len(tiles) == 2
    tiles = layout("one_plus_7", tiles=3).tiles(request([], near))
    assert kinds(tiles) == ["incident"] * 3 + ["empty"] * 5
    tiles = layout("carousel").tiles(request(cams(3), near))  # slots never rotate
    assert kinds(tiles) == ["incident"] and tiles[0].source.slot == 0


def test_snapshot_makes_the_camera_tiles_stills_refreshed_at_its_rate() -> None:
    tiles = layout("grid", columns=2, rows=2, snapshot="30s").tiles(request(cams(3)))
    assert kinds(tiles) == ["snapshot"] * 3 + ["empty"]
    assert [t.source.refresh for t in tiles] == [30.0] * 3 + [0.0]
    assert describe_tile(tiles[0])["source"] == {
        "kind": "snapshot",
        "camera": "cam-0",
        "stream": "sub",
        "cameras": [],
        "dwell": 0.0,
        "slot": 0,
        "refresh": 30.0,
    }
    tiles = layout("one_plus_5", snapshot=5, big_stream="main").tiles(request(cams(6)))
    assert kinds(tiles) == ["snapshot"] * 6 and tiles[0].source.stream == "main"
    # carousels and an incident's slots are not stills
    tiles = layout("grid", columns=1, rows=1, dwell=10, snapshot=60).tiles(request(cams(2)))
    assert kinds(tiles) == ["carousel"]
    tiles = layout("spotlight", snapshot=60).tiles(request(["cam-0"], incident("a", "b")))
    assert set(kinds(tiles)) == {"incident"}


def test_a_snapshot_source_checks_its_refresh() -> None:
    assert TileSource(SourceKind.SNAPSHOT, camera="a", refresh=1).refresh == 1
    for bad in (
        {"refresh": 0.5},
        {"refresh": 3601},
        {"refresh": float("nan")},
        {"refresh": True},
        {"camera": None, "refresh": 10},
    ):
        with pytest.raises((ValueError, TypeError)):
            TileSource(SourceKind.SNAPSHOT, **{"camera": "a", **bad})
    with pytest.raises(ValueError):
        TileSource(SourceKind.CAMERA, camera="a", refresh=10)


def test_spotlight_big_stream() -> None:
    tiles = layout("spotlight", big_stream="main").tiles(request([], incident("a", "b", "c")))
    assert [t.source.stream for t in tiles] == ["main", "sub", "sub"]
    tiles = layout("spotlight", big_stream="main").tiles(request([], incident("a", "b")))
    assert [t.source.stream for t in tiles] == ["sub", "sub"]  # equal halves: no big tile


# --- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("grid", {"columns": 0}, "columns must be from 1 to 8, not 0"),
        ("grid", {"rows": 9}, "rows must be from 1 to 8, not 9"),
        ("grid", {"columns": "3"}, "columns must be a whole number"),
        ("grid", {"columns": True}, "columns must be a whole number"),
        ("grid", {"columns": 2.5}, "columns must be a whole number"),
        ("grid", {"colums": 3}, "extra keys not allowed"),
        ("grid", {"dwell": "0.5s"}, "dwell must be from 1 s to 3600 s, not 0.5 s"),
        ("grid", {"dwell": "2h"}, "dwell must be from 1 s to 3600 s"),
        ("grid", {"dwell": "soon"}, "expected a duration"),
        ("grid", {"stream": "hd"}, "stream is 'sub' or 'main'"),
        ("carousel", {"dwell": -5}, "negative"),
        ("one_plus_n", {"n": 6}, "n is one of 5, 7, 12"),
        ("one_plus_5", {"n": 5}, "extra keys not allowed"),
        ("one_plus_7", {"columns": 3}, "extra keys not allowed"),
        ("spotlight", {"tiles": 10}, "tiles must be from 1 to 9, not 10"),
        ("spotlight", {"tiles": 0}, "tiles must be from 1 to 9, not 0"),
        ("spotlight", {"radius_m": 10}, "radius_m must be from 25 to 3000, not 10"),
        ("spotlight", {"radius_m": float("nan")}, "radius_m must be from 25 to 3000"),
        ("spotlight", {"radius_m": "300"}, "radius_m must be a number"),
        ("incident_spotlight", {"hold": "2h"}, "hold must be from 0 s to 3600 s"),
        ("grid", {"hold": -1}, "negative"),
        ("grid", {"spotlight": "yes"}, "spotlight must be true or false"),
        ("one_plus_5", {"timeout": "2d"}, "timeout must be from 0 s to 86400 s"),
        ("grid", {"snapshot": "0.5s"}, "snapshot must be from 1 s to 3600 s, not 0.5 s"),
        ("one_plus_7", {"snapshot": "2h"}, "snapshot must be from 1 s to 3600 s"),
        ("spotlight", {"min_priority": "urgent"}, "min_priority is low, normal, high or critical"),
    ],
)
def test_bad_options_are_refused_clearly(name: str, options: dict, message: str) -> None:
    with pytest.raises(vol.Invalid) as err:
        SPECS[name].config_schema(options)
    assert message in str(err.value)
    with pytest.raises(vol.Invalid):  # a layout built by hand checks them too
        SPECS[name].factory(None, options)


def test_defaults() -> None:
    assert SPECS["spotlight"].config_schema({}) == {
        "stream": "sub",
        "tiles": 4,
        "radius_m": 300.0,
        "hold": 120.0,
    }
    assert SPECS["carousel"].config_schema({}) == {
        "stream": "sub",
        "columns": 1,
        "rows": 1,
        "dwell": 10.0,
    }
    assert SPECS["grid"].config_schema({}) == {"stream": "sub"}
    assert SPECS["one_plus_n"].config_schema({})["n"] == 5
    # the schemas are idempotent: the hub validates, then the layout again
    for spec in SPECS.values():
        once = spec.config_schema({"dwell": "1m", "tiles": 3})
        assert spec.config_schema(once) == once


def _wall_blueprint(ref: str, inputs: dict[str, Any]) -> dict[str, Any]:
    produced = (
        BlueprintLoader()
        .load(ref)
        .instantiate(inputs, SelectorContext(cameras=("cam-a", "cam-b", "cam-c"), districts=()))
    )
    return CORE_SCHEMAS["walls"][0]([produced])[0]


@pytest.mark.parametrize(
    ("ref", "inputs"),
    [
        ("wall/grid.yaml", {"screen_1": ["cam-a", "cam-b"]}),
        (
            "wall/grid.yaml",
            {"screen_1": ["cam-a"], "screen_4_layout": "incident_spotlight", "dwell": "10m"},
        ),
        ("wall/grid.yaml", {"screen_1": ["cam-a"], "columns": 8, "rows": 1, "dwell": "5s"}),
        ("wall/incident_spotlight.yaml", {"idle_cameras": ["cam-c"]}),
        (
            "wall/incident_spotlight.yaml",
            {"idle_cameras": [], "tiles": 9, "radius": 3000, "hold": "0s"},
        ),
    ],
)
def test_the_shipped_wall_blueprints_options_validate(ref: str, inputs: dict) -> None:
    for screen in _wall_blueprint(ref, inputs)["screens"]:
        spec = SPECS[screen["layout"]]
        made = spec.factory(None, spec.config_schema(screen["options"]))
        check_tiles(made.tiles(request(screen["cameras"])))


def test_a_site_file_with_bad_screen_options_is_refused_at_their_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "walls:\n"
        "  - id: mur\n"
        "    screens:\n"
        "      - id: ecran-1\n"
        "        layout: grid\n"
        "        options: {columns: 12, dwell: 20s}\n"
        "      - id: ecran-2\n"
        "        layout: one_plus_5\n"
        "        options: {n: 5}\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        Hub.from_file(site, web=False).setup()
    assert str(err.value).splitlines() == [
        f"{site}:6:19: walls[0].screens[0].options.columns: wall layout 'grid': "
        "columns must be from 1 to 8, not 12",
        f"{site}:9:19: walls[0].screens[1].options.n: wall layout 'one_plus_5': "
        "unknown key 'n' (allowed: big_stream, categories, dwell, hold, min_priority, "
        "radius_m, snapshot, spotlight, stream, tiles, timeout)",
    ]


# --- properties ----------------------------------------------------------------------

camera_ids = st.sampled_from([f"c{i}" for i in range(40)])


@st.composite
def incidents(draw: st.DrawFn) -> IncidentRef | None:
    if draw(st.booleans()):
        return None
    return incident(*draw(st.lists(camera_ids, max_size=15)))


@st.composite
def screens(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(NAMES))
    options: dict[str, Any] = {}
    if name in ("grid", "carousel", "spotlight", "incident_spotlight"):
        for key in ("columns", "rows"):
            if draw(st.booleans()):
                options[key] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        options["dwell"] = draw(st.floats(1, 3600))
    if draw(st.booleans()):
        options["tiles"] = draw(st.integers(1, 9))
    if name == "one_plus_n":
        options["n"] = draw(st.sampled_from([5, 7, 12]))
    if name not in ("grid", "carousel") and draw(st.booleans()):
        options["big_stream"] = "main"
    return name, options


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(screens(), st.lists(camera_ids, max_size=90), incidents())
def test_any_screen_is_valid_and_shows_only_its_cameras_once(
    screen: tuple[str, dict[str, Any]], cameras: list[str], spot: IncidentRef | None
) -> None:
    name, options = screen
    tiles = layout(name, **options).tiles(request(cameras, spot))
    check_tiles(tiles)
    assert 1 <= len(tiles) <= 64
    assert math.isclose(area(tiles), 1.0, abs_tol=1e-9)  # every bundled layout covers it
    if spot is not None:
        # the incident replaces the cameras: slots only, each a distinct camera
        assert {t.source.kind for t in tiles} <= {SourceKind.INCIDENT, SourceKind.EMPTY}
        slots = [t.source.slot for t in tiles if t.source.kind is SourceKind.INCIDENT]
        assert all(s < len(spot.cameras) for s in slots)
        ids = [spot.cameras[s].id for s in slots]
        assert len(set(ids)) == len(ids)
        distinct = len(set(spot.camera_ids))
        assert len(slots) == min(distinct, options.get("tiles", 4 if "spot" in name else 64),
                                 len(tiles))  # fmt: skip
        return
    seen = shown(tiles)
    assert len(seen) == len(set(seen))  # disjoint shares: never twice at any moment
    assert set(seen) <= set(cameras)  # nothing from outside
    if "dwell" in options or name == "carousel":  # the surplus rotates: all shown
        assert set(seen) == set(cameras)
    else:  # the first ones, in order, as many as there are tiles
        assert seen == list(dict.fromkeys(cameras))[: len(tiles)]
    for t in tiles:
        if t.source.kind is SourceKind.CAROUSEL:
            assert len(t.source.cameras) >= 2


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(NAMES),
    st.dictionaries(
        st.sampled_from(
            ["columns", "rows", "dwell", "tiles", "radius_m", "hold", "n", "stream", "timeout", "x"]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-10, 5000),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(max_size=8),
            st.sampled_from(["20s", "2m", "1h", "main", "sub", "90", "-1s"]),
        ),
        max_size=5,
    ),
)
def test_options_parse_or_fail_with_invalid(name: str, options: dict[str, Any]) -> None:
    """Site-file input: either a clear vol.Invalid or values in range, and a
    layout that builds and answers."""
    spec = SPECS[name]
    try:
        valid = spec.config_schema(options)
    except vol.Invalid:
        return
    for key, (low, high) in {
        "columns": (1, 8),
        "rows": (1, 8),
        "dwell": (1, 3600),
        "tiles": (1, 9),
        "radius_m": (25, 3000),
        "hold": (0, 3600),
        "timeout": (0, 86400),
    }.items():
        if key in valid:
            assert low <= valid[key] <= high and not isinstance(valid[key], bool)
    check_tiles(spec.factory(None, valid).tiles(request(cams(20), incident("a", "b"))))
