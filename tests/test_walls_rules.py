"""The spotlight rules after the review of issue 14: an incident let go by a
timeout or an operator stays off the wall (until its priority rises, and
across a restart); rules that take incidents of some priorities or
categories only; a screen's rule keys kept across a layout change; the hold
and the waiting list on the bus and in the audit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from test_walls import (
    OPERATOR,
    Clock,
    closed,
    events,
    incident,
    parts,
    screen,
    spot,
    started,
    wall,
)

from csuhub.config.schema import screen_camera
from csuhub.events import ConfigReloaded
from csuhub.refs import LinkedCamera, Priority
from csuhub.walls import view
from csuhub.walls.model import rules_of
from csuhub.walls.parse import camera_ref, parse_push
from csuhub.walls.screens import WallError
from csuhub.walls.tiles import SourceKind, Tile, TileSource

__all__ = ["parts"]  # the fixture


def refined(ref: Any) -> Any:
    """The same open incident, a camera linked later (an IncidentCameraLinked)."""
    return replace(ref, cameras=(*ref.cameras, LinkedCamera("cam-b", distance_m=300.0)))


async def test_an_incident_let_go_by_its_timeout_stays_off_until_its_priority_rises(
    parts: Any, tmp_path: Path
) -> None:
    site = wall(screen("spot", "spotlight", "cam-d", timeout="5m"))
    hub = await parts(site)
    clock = Clock()
    manager = await started(hub, clock)
    ref = incident(1, Priority.HIGH, "cam-a")
    await manager.incident(ref)
    clock.now += 301
    await manager.tick()
    assert spot(manager).incident is None
    await manager.incident(refined(ref))
    assert spot(manager).incident is None
    assert manager.wall("mur").waiting == []  # not queued either
    # a restart keeps it released
    await manager.stop()
    again = await parts(site, store_path=tmp_path / "hub.db")
    again.incidents.known[1] = refined(ref)
    restored = await started(again, clock)
    assert restored.wall("mur").released == {1: int(Priority.HIGH)}
    await restored.incident(refined(ref))
    assert spot(restored).incident is None
    # more urgent now: it takes the screen again
    await restored.incident(replace(refined(ref), priority=Priority.CRITICAL))
    assert spot(restored).incident == 1
    assert restored.wall("mur").released == {}
    # a new incident is never held back
    await restored.incident(incident(2, Priority.LOW, "cam-c"))
    assert restored.wall("mur").waiting == [2]


async def test_an_operators_change_of_a_spotlight_screen_stands(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d")))
    manager = await started(hub)
    ref = incident(1, Priority.HIGH, "cam-a")
    await manager.incident(ref)
    await manager.set_screen(
        "mur", "spot", OPERATOR, layout="grid", cameras=["cam-c"], options={"spotlight": True}
    )
    assert spot(manager).incident is None
    await manager.incident(refined(ref))
    assert spot(manager).incident is None and spot(manager).shown.cameras == ("cam-c",)
    # closing the incident forgets it
    await manager.closed(closed(ref))
    assert manager.wall("mur").released == {}
    # pinning is not a change of what the screen shows: the incident stays
    await manager.incident(incident(2, Priority.HIGH, "cam-a"))
    await manager.set_screen("mur", "spot", OPERATOR, pinned=True)
    assert spot(manager).incident == 2 and manager.wall("mur").released == {}


async def test_min_priority_and_categories_choose_the_incidents_a_screen_takes(
    parts: Any,
) -> None:
    hub = await parts(
        wall(
            screen("spot", "spotlight", "cam-d", min_priority="high"),
            screen("fire", "grid", "cam-c", spotlight=True, categories=["Fire", "flood"]),
        )
    )
    manager = await started(hub)
    await manager.incident(incident(1, Priority.NORMAL, "cam-a"))  # a fight, normal
    assert spot(manager).incident is None and spot(manager, "fire").incident is None
    assert manager.wall("mur").waiting == []  # no screen takes it: it does not wait
    await manager.incident(incident(2, Priority.HIGH, "cam-a"))  # "high and above"
    assert spot(manager).incident == 2 and spot(manager, "fire").incident is None
    fire = replace(incident(3, Priority.LOW, "cam-b"), category="fire")
    await manager.incident(fire)
    assert spot(manager, "fire").incident == 3
    # a critical fight takes "spot" from the high one, which waits
    await manager.incident(incident(4, Priority.CRITICAL, "cam-b"))
    assert spot(manager).incident == 4 and manager.wall("mur").waiting == [2]
    # the waiting list only hands a screen what its rules accept
    hub.incidents.known = {2: incident(2, Priority.HIGH, "cam-a")}
    await manager.closed(closed(fire))
    assert spot(manager, "fire").incident is None and manager.wall("mur").waiting == [2]
    await manager.closed(closed(incident(4, Priority.CRITICAL, "cam-b")))
    assert spot(manager).incident == 2


def test_the_rule_options_are_checked() -> None:
    assert rules_of("grid", {"min_priority": "HIGH"}).min_priority is Priority.HIGH
    assert rules_of("grid", {"categories": "fire"}).categories == frozenset({"fire"})
    for bad in (
        {"min_priority": "urgent"},
        {"min_priority": 3},
        {"categories": []},
        {"categories": [""]},
        {"categories": [1]},
        {"categories": ["x"] * 33},
    ):
        with pytest.raises(ValueError):
            rules_of("grid", bad)


async def test_a_new_layout_keeps_the_screens_rule_keys(parts: Any) -> None:
    hub = await parts(
        wall(screen("s1", "grid", "cam-a", spotlight=True, hold="2m", columns=3, timeout=60))
    )
    manager = await started(hub)
    await manager.set_screen("mur", "s1", OPERATOR, layout="spotlight")
    assert spot(manager, "s1").shown.options == {"spotlight": True, "hold": "2m", "timeout": 60}
    assert spot(manager, "s1").rules.hold == 120.0
    # options given: they are the screen's options, rules included or not
    await manager.set_screen("mur", "s1", OPERATOR, layout="grid", options={"columns": 2})
    assert spot(manager, "s1").shown.options == {"columns": 2}
    assert not spot(manager, "s1").rules.spotlight


async def test_the_hold_and_the_waiting_list_are_changes_of_the_wall(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d", hold="2m")))
    manager = await started(hub)
    seen = events(hub)
    first = incident(1, Priority.HIGH, "cam-a")
    await manager.incident(first)
    await manager.incident(incident(2, Priority.NORMAL, "cam-b"))  # waits
    await manager.closed(closed(first))  # held two minutes
    await hub.bus.drain()
    assert [(e.screen, e.cause, e.version) for e in seen] == [
        ("spot", "incident", 1),
        ("", "waiting", 2),
        ("spot", "hold", 3),
    ]
    assert manager.wall("mur").version == 3
    hold = next(r for r in await hub.store.audit_records() if r.action == "wall.hold")
    assert hold.target == "wall:mur/spot" and hold.details["incident"] == 1
    assert hold.details["hold"] == 120.0
    await manager.closed(closed(incident(2, Priority.NORMAL, "cam-b")))  # leaves the list
    await hub.bus.drain()
    assert seen[-1].cause == "waiting" and manager.wall("mur").waiting == []


def test_a_push_naming_a_tile_names_its_screen() -> None:
    with pytest.raises(WallError) as refused:
        parse_push({"camera": "cam-a", "tile": 1})
    assert refused.value.field == "tile" and refused.value.kind == "invalid"
    assert parse_push({"camera": "cam-a", "screen": "s1", "tile": 1}).tile == 1


async def test_a_kiosks_scope_is_what_the_tiles_show(parts: Any) -> None:
    hub = await parts(
        wall(
            screen("s1", "grid", "cam-a", "cam-b", "cam-far", columns=2, rows=1),
            screen("spot", "spotlight", "cam-d", tiles=1),
        )
    )
    manager = await started(hub)
    # cam-far was given to s1 but has no tile (2x1)
    assert manager.cameras_on(["mur"]) == {"cam-a", "cam-b", "cam-d"}
    await manager.incident(incident(1, Priority.HIGH, "cam-c", "cam-x", "cam-y"))
    # one slot: the nearest camera only; cam-d (what the screen goes back to) is hidden
    assert manager.cameras_on(["mur"]) == {"cam-a", "cam-b", "cam-c"}
    await manager.push("mur", "cam-z", OPERATOR, screen_id="s1", tile=1)
    assert manager.cameras_on(["mur"]) == {"cam-a", "cam-z", "cam-c"}


async def test_a_snapshot_tile_resolves_like_a_camera_tile_without_a_codec() -> None:
    hub = type("Hub", (), {"cameras": type("C", (), {"states": {"cam-a": "online"}})()})()

    async def scope(camera: str) -> bool:
        return camera != "cam-x"

    def snap(camera: str) -> Tile:
        return Tile(0, 0, 1, 1, TileSource(SourceKind.SNAPSHOT, camera=camera, refresh=30))

    shown = await view._tile(hub, snap("cam-a"), None, scope)
    assert shown["camera"] == "cam-a" and shown["playable"] is True
    assert shown["source"]["kind"] == "snapshot" and shown["source"]["refresh"] == 30
    assert (await view._tile(hub, snap("cam-b"), None, scope))["reason"] == "offline"
    hidden = await view._tile(hub, snap("cam-x"), None, scope)
    assert hidden["camera"] is None and hidden["source"]["camera"] is None
    assert hidden["reason"] == "out_of_scope"


def placed(camera_id: str, district: str = "Centre", *groups: str) -> dict[str, Any]:
    return {
        "id": camera_id,
        "driver": "still",
        "groups": list(groups),
        "location": {"lat": 50.63, "lon": 3.06, "district": district},
    }


async def test_group_and_district_selectors_resolve_to_the_sites_cameras(parts: Any) -> None:
    hub = await parts(
        wall(screen("s1", "grid", "group:parvis", "cam-a", "group:nowhere", columns=4, rows=1))
    )
    hub.cameras_data = [
        placed("cam-c", "Centre", "parvis"),
        placed("cam-b", "Wazemmes", "parvis"),
        placed("cam-a", "Centre"),
        placed("cam-d", "Fives"),
    ]
    manager = await started(hub)

    def shown() -> list[str | None]:
        return [t.source.camera for t in manager.wall("mur").screens["s1"].tiles]

    assert shown() == ["cam-b", "cam-c", "cam-a", None]  # the group sorted by id, no repeat
    await manager.set_screen("mur", "s1", OPERATOR, cameras=["district:centre", "cam-d"])
    assert shown() == ["cam-a", "cam-c", "cam-d", None]
    assert spot(manager, "s1").shown.cameras == ("district:centre", "cam-d")  # kept as given
    assert manager.cameras_on(["mur"]) == {"cam-a", "cam-c", "cam-d"}
    # a reload: cam-d moves to the Centre, cam-e appears there
    hub.cameras_data = [
        *hub.cameras_data[:3],
        placed("cam-d", "Centre"),
        placed("cam-e", "Centre"),
    ]
    hub.bus.fire(ConfigReloaded(trigger="test", sections=["cameras"], cameras={},
                                restart_required=[]))  # fmt: skip
    await hub.bus.drain()
    assert shown() == ["cam-a", "cam-c", "cam-d", "cam-e"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cam-a", "cam-a"),
        ("group:parvis", "group:parvis"),
        ("district:Faubourg de Béthune", "district:Faubourg de Béthune"),
        ("district: Centre ", "district:Centre"),
    ],
)
def test_screen_camera_refs_parse(value: str, expected: str) -> None:
    assert screen_camera(value) == expected
    assert camera_ref(value) == expected


@pytest.mark.parametrize(
    "value", ["group:", "group:Parvis", "district:", "district:   ", "district:a\nb", "Cam", 3]
)
def test_bad_screen_camera_refs_are_refused(value: Any) -> None:
    with pytest.raises(vol.Invalid):
        screen_camera(value)
    with pytest.raises(WallError):
        camera_ref(value)


async def test_a_tile_of_a_camera_described_as_h265_says_so_and_names_a_fallback() -> None:
    device = {
        "cam-a": {"profiles": [{"name": "P1", "codec": "H265"}, {"name": "P2", "codec": "H264"}]},
        "cam-b": {"profiles": [{"name": "m", "codec": "hevc"}, {"name": "s", "codec": "H.265"}]},
        "cam-c": {"profiles": [{"name": "main", "codec": "H264"}]},
    }  # fmt: skip
    cameras = type("C", (), {"states": dict.fromkeys(device, "online"), "device_saved": device})
    hub = type("Hub", (), {"cameras": cameras(), "live": object()})()  # no tile_problem

    async def scope(camera: str) -> bool:
        return True

    async def tile(camera: str, stream: str) -> dict[str, Any]:
        source = TileSource(SourceKind.CAMERA, camera=camera, stream=stream)
        return await view._tile(hub, Tile(0, 0, 1, 1, source), None, scope)

    main = await tile("cam-a", "main")
    assert (main["playable"], main["reason"], main["fallback"]) == (False, "h265", "sub")
    assert (await tile("cam-a", "sub"))["playable"] is True
    only = await tile("cam-b", "main")
    assert (only["reason"], only["fallback"]) == ("h265", "snapshot")
    assert (await tile("cam-c", "main"))["playable"] is True
    assert view.known_codec(hub, "cam-x", "main") is None

    class Live:  # the live service knows better when it says
        def tile_problem(self, camera: str, stream: str) -> str | None:
            return None

    hub.live = Live()
    assert (await tile("cam-a", "main"))["playable"] is True
