"""The wall manager and its spotlight rules, on a small hub of parts: a real
store (SQLite) and bus, the test layouts of ``walls_helpers`` in a real
registry, incidents given by hand, and a clock the test moves.

Priority, pinning, hold, timeout, the waiting list, restore after a restart
and the site file winning over a stored state; layouts that fail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from walls_helpers import LayoutsPlugin

from csuhub.bus import EventBus
from csuhub.config.schema import CORE_SCHEMAS
from csuhub.config.settings import Settings
from csuhub.events import ComponentFailed, WallChanged
from csuhub.refs import IncidentRef, IncidentStatus, LinkedCamera, Priority
from csuhub.registry import Registry
from csuhub.security.permissions import system_principal
from csuhub.store import Store
from csuhub.walls.manager import WallManager
from csuhub.walls.model import Base, ScreenState, rules_of
from csuhub.walls.parse import parse_push, parse_screen
from csuhub.walls.screens import WallError
from csuhub.web.events import RULES, parse_events

OPERATOR = system_principal("op")
EVENT_NAMES = sorted(RULES)


@dataclass
class Incidents:
    known: dict[int, IncidentRef] = field(default_factory=dict)

    async def get(self, incident_id: int) -> Any:
        ref = self.known.get(incident_id)
        return None if ref is None else _Found(ref)


@dataclass
class _Found:
    ref: IncidentRef

    def to_ref(self) -> IncidentRef:
        return self.ref


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class PartsHub:
    """What the manager asks of a hub, and nothing more."""

    def __init__(self, store: Store, walls: list[dict[str, Any]]) -> None:
        self.store = store
        self.bus = EventBus()
        self.registry = Registry()
        for spec in LayoutsPlugin().register_wall_layouts(self):
            self.registry.wall_layouts.add(spec, "test-layouts")
        self.walls_data = walls
        #: the site's cameras (raw site-file entries), for group and district selectors
        self.cameras_data: list[dict[str, Any]] = []
        self.answer: str | None = None
        self.incidents = Incidents()
        self.cameras = type("Cameras", (), {"states": {}})()

    @property
    def config(self) -> Any:
        cameras = CORE_SCHEMAS["cameras"][0](self.cameras_data)
        settings = Settings.from_data({"walls": self.walls_data, "cameras": cameras})
        return type("Config", (), {"settings": settings})()

    def layout_for(self, incident: IncidentRef, wall: Any) -> str | None:
        return self.answer


def wall(*screens: dict[str, Any], wall_id: str = "mur") -> dict[str, Any]:
    return {"id": wall_id, "screens": list(screens)}


def screen(screen_id: str, layout: str, *cameras: str, **options: Any) -> dict[str, Any]:
    return {"id": screen_id, "layout": layout, "cameras": list(cameras), "options": options}


def incident(
    incident_id: int, priority: Priority = Priority.NORMAL, *cameras: str, opened: float = 0.0
) -> IncidentRef:
    linked = tuple(LinkedCamera(c, distance_m=100.0 * (i + 1)) for i, c in enumerate(cameras))
    return IncidentRef(
        id=incident_id,
        category="fight",
        priority=priority,
        opened_at=opened or 1_000_000.0 + incident_id,
        cameras=linked or (LinkedCamera("cam-n"),),
    )


def closed(ref: IncidentRef) -> IncidentRef:
    return replace(ref, status=IncidentStatus.CLOSED)


@pytest.fixture
async def parts(tmp_path: Path) -> Any:
    stores: list[Store] = []

    async def make(*walls: dict[str, Any], store_path: Path | None = None) -> PartsHub:
        store = Store(store_path or tmp_path / "hub.db")
        await store.open()
        stores.append(store)
        return PartsHub(store, list(walls))

    yield make
    for store in stores:
        await store.close()


async def started(hub: PartsHub, clock: Clock | None = None) -> WallManager:
    manager = WallManager(hub, clock=clock or Clock())
    await manager.start()
    return manager


def spot(manager: WallManager, screen_id: str = "spot", wall_id: str = "mur") -> ScreenState:
    return manager.wall(wall_id).screens[screen_id].state


def events(hub: PartsHub) -> list[WallChanged]:
    seen: list[WallChanged] = []
    hub.bus.listen(WallChanged, seen.append)
    return seen


async def test_an_incident_takes_the_spotlight_and_reverts_exactly(parts: Any) -> None:
    hub = await parts(wall(screen("s1", "grid", "cam-a"), screen("spot", "spotlight", "cam-d")))
    manager = await started(hub)
    seen = events(hub)
    before = spot(manager)
    await manager.incident(incident(1, Priority.NORMAL, "cam-a", "cam-b"))
    now = spot(manager)
    assert now.incident == 1 and now.shown.cameras == ("cam-a", "cam-b")
    assert now.previous == before.shown and now.shown.layout == "spotlight"
    tiles = manager.wall("mur").screens["spot"].tiles
    assert [t.source.kind.value for t in tiles] == ["incident"] * 4
    assert spot(manager, "s1").incident is None  # only the designated screen
    await manager.closed(closed(incident(1, Priority.NORMAL, "cam-a", "cam-b")))
    assert spot(manager) == before
    await hub.bus.drain()
    assert [(e.screen, e.cause, e.version) for e in seen] == [
        ("spot", "incident", 1),
        ("spot", "revert", 2),
    ]
    actions = [r.action for r in await hub.store.audit_records()]
    assert actions[:2] == ["wall.revert", "wall.spotlight"]  # newest first


async def test_priority_takes_equal_waits_and_the_next_takes_over(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d")))
    manager = await started(hub)
    low = incident(1, Priority.NORMAL, "cam-a")
    await manager.incident(low)
    await manager.incident(incident(2, Priority.NORMAL, "cam-b"))  # equal: waits
    assert spot(manager).incident == 1 and manager.wall("mur").waiting == [2]
    await manager.incident(incident(3, Priority.LOW, "cam-c"))  # lower: waits
    high = incident(4, Priority.CRITICAL, "cam-c")
    await manager.incident(high)  # higher: takes it, the displaced one waits
    assert spot(manager).incident == 4
    assert spot(manager).previous == Base("spotlight", ("cam-d",), {})
    assert sorted(manager.wall("mur").waiting) == [1, 2, 3]
    hub.incidents.known = {1: low, 2: incident(2, Priority.NORMAL, "cam-b"), 3: incident(3)}
    await manager.closed(closed(high))
    # the waiting one of highest priority, the oldest first: 1 (NORMAL, opened first)
    assert spot(manager).incident == 1
    await manager.closed(closed(low))
    assert spot(manager).incident == 2
    hub.incidents.known[3] = closed(incident(3))  # closed while waiting
    await manager.closed(closed(incident(2, Priority.NORMAL, "cam-b")))
    assert spot(manager).incident is None and spot(manager).shown.cameras == ("cam-d",)
    assert manager.wall("mur").waiting == []


async def test_a_pinned_screen_is_never_taken(parts: Any) -> None:
    hub = await parts(
        wall(screen("spot", "spotlight", "cam-d"), screen("b", "grid", spotlight=True))
    )
    manager = await started(hub)
    await manager.set_screen("mur", "spot", OPERATOR, pinned=True)
    await manager.incident(incident(1, Priority.CRITICAL, "cam-a"))
    assert spot(manager).incident is None and spot(manager).pinned
    assert spot(manager, "b").incident == 1  # the other designated screen (options)
    await manager.set_screen("mur", "b", OPERATOR, pinned=True)
    await manager.incident(incident(2, Priority.CRITICAL, "cam-b"))
    assert spot(manager, "b").incident == 1 and manager.wall("mur").waiting == [2]
    actions = [r.action for r in await hub.store.audit_records()]
    assert actions.count("wall.pin") == 2


async def test_hold_keeps_a_closed_incident_then_reverts(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d", hold="2m")))
    clock = Clock()
    manager = await started(hub, clock)
    ref = incident(1, Priority.HIGH, "cam-a")
    await manager.incident(ref)
    await manager.closed(closed(ref))
    assert spot(manager).incident == 1 and spot(manager).closed
    await manager.tick(clock.now + 119)
    assert spot(manager).incident == 1
    # a new incident of any priority may take a screen that only holds a closed one
    await manager.incident(incident(2, Priority.LOW, "cam-b"))
    assert spot(manager).incident == 2 and not spot(manager).closed
    await manager.closed(closed(incident(2, Priority.LOW, "cam-b")))
    await manager.tick(clock.now + 121)
    assert spot(manager).incident is None


async def test_timeout_lets_an_open_incident_go(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d", timeout="5m")))
    clock = Clock()
    manager = await started(hub, clock)
    await manager.incident(incident(1, Priority.HIGH, "cam-a"))
    assert spot(manager).until == clock.now + 300
    await manager.tick(clock.now + 299)
    assert spot(manager).incident == 1
    await manager.tick(clock.now + 300)
    assert spot(manager).incident is None


async def test_the_timer_fires_by_itself(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d", timeout=0.05)))
    manager = await started(hub, time.time)  # type: ignore[arg-type]
    await manager.incident(incident(1, Priority.HIGH, "cam-a"))
    await hub.bus.wait_for(WallChanged, match={"cause": "revert"}, timeout=5)
    assert spot(manager).incident is None
    await manager.stop()


async def test_linked_cameras_follow_and_radius_cuts(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "spotlight", "cam-d", radius_m=250)))
    manager = await started(hub)
    await manager.incident(incident(1, Priority.HIGH, "cam-a", "cam-b", "cam-c"))
    assert spot(manager).shown.cameras == ("cam-a", "cam-b")  # 100 m, 200 m; not 300 m
    await manager.incident(replace(incident(1, Priority.HIGH, "cam-a", "cam-b"), cameras=(
        LinkedCamera("cam-a", 100.0), LinkedCamera("cam-x", 150.0), LinkedCamera("cam-op"),
    )))  # fmt: skip
    assert spot(manager).shown.cameras == ("cam-a", "cam-x", "cam-op")


async def test_the_selector_names_the_layout_or_the_screens_own_is_used(parts: Any) -> None:
    hub = await parts(wall(screen("spot", "incident_spotlight", "cam-d", tiles=2)))
    manager = await started(hub)
    hub.answer = "grid"
    await manager.incident(incident(1, Priority.HIGH, "cam-a"))
    assert spot(manager).shown.layout == "grid" and spot(manager).shown.options == {}
    await manager.closed(closed(incident(1)))
    hub.answer = "no-such-layout"
    await manager.incident(incident(2, Priority.HIGH, "cam-a"))
    shown = spot(manager).shown
    assert shown.layout == "incident_spotlight" and shown.options == {"tiles": 2}
    assert len(manager.wall("mur").screens["spot"].tiles) == 2  # the alias: spotlight


async def test_restart_restores_unless_the_site_file_changed(parts: Any, tmp_path: Path) -> None:
    site = wall(screen("s1", "grid", "cam-a"), screen("spot", "spotlight", "cam-d"))
    hub = await parts(site)
    manager = await started(hub)
    await manager.push("mur", "cam-z", OPERATOR, screen_id="s1", tile=3)
    await manager.incident(incident(7, Priority.HIGH, "cam-b"))
    state = {s: spot(manager, s) for s in ("s1", "spot")}
    version = manager.wall("mur").version
    await manager.stop()
    again = await parts(site, store_path=tmp_path / "hub.db")
    again.incidents.known[7] = incident(7, Priority.HIGH, "cam-b")
    restored = await started(again)
    assert {s: spot(restored, s) for s in ("s1", "spot")} == state
    assert restored.wall("mur").version == version
    tiles = restored.wall("mur").screens["s1"].tiles
    assert tiles[3].source.camera == "cam-z"
    await restored.stop()
    # the incident closed while the hub was down, and s1 is declared differently now
    changed = wall(screen("s1", "grid", "cam-b"), screen("spot", "spotlight", "cam-d"))
    third = await parts(changed, store_path=tmp_path / "hub.db")
    third.incidents.known[7] = closed(incident(7, Priority.HIGH, "cam-b"))
    seen = events(third)
    final = await started(third)
    assert spot(final, "s1").shown == Base("grid", ("cam-b",), {})
    assert spot(final, "spot").incident is None
    await third.bus.drain()
    assert {(e.screen, e.cause) for e in seen} == {("s1", "site"), ("spot", "revert")}
    actions = {r.action: r.details for r in await third.store.audit_records()}
    assert actions["wall.set"]["cause"] == "site"


async def test_operators_set_and_push(parts: Any) -> None:
    hub = await parts(wall(screen("s1", "grid", "cam-a", columns=2, rows=1)))
    manager = await started(hub)
    _, where, tile = await manager.push("mur", "cam-b", OPERATOR)
    assert (where, tile) == ("s1", 1)
    with pytest.raises(WallError) as full:
        await manager.push("mur", "cam-c", OPERATOR)
    assert full.value.kind == "conflict"
    await manager.push("mur", "cam-c", OPERATOR, screen_id="s1", tile=0)
    cams = [t.source.camera for t in manager.wall("mur").screens["s1"].tiles]
    assert cams == ["cam-c", "cam-b"]
    await manager.set_screen("mur", "s1", OPERATOR, layout="grid", cameras=["cam-d"])
    # the same layout keeps its options; the pushes are cleared
    assert spot(manager, "s1").shown == Base("grid", ("cam-d",), {"columns": 2, "rows": 1})
    await manager.set_screen("mur", "s1", OPERATOR, layout="spotlight")
    assert spot(manager, "s1").shown == Base("spotlight", ("cam-d",), {})  # a new one: defaults
    for bad, kind in (
        ({"layout": "nope"}, "layout"),
        ({"options": {"columns": 99}}, "options"),
        ({"options": {"hold": "soon"}}, "options"),
    ):
        with pytest.raises(WallError) as refused:
            await manager.set_screen("mur", "s1", OPERATOR, **bad)
        assert refused.value.field == kind
    with pytest.raises(WallError) as missing:
        await manager.set_screen("mur", "nope", OPERATOR, pinned=True)
    assert missing.value.kind == "not_found"


async def test_a_failing_layout_keeps_the_previous_tiles_and_is_reported(parts: Any) -> None:
    hub = await parts(wall(screen("s1", "broken", "cam-a"), screen("s2", "nowhere", "cam-b")))
    failures: list[ComponentFailed] = []
    hub.bus.listen(ComponentFailed, failures.append)
    manager = await started(hub)
    s1, s2 = manager.wall("mur").screens["s1"], manager.wall("mur").screens["s2"]
    good = s1.tiles
    assert good[0].source.camera == "cam-a" and s1.problem is None
    assert s2.problem and "nowhere" in s2.problem and len(s2.tiles) == 1
    # the layout raises: the screen keeps what it showed, the hub carries on
    await manager.set_screen("mur", "s1", OPERATOR, cameras=["boom"])
    assert s1.tiles == good and "fell over" in (s1.problem or "")
    await hub.bus.drain()
    assert {f.component for f in failures} == {"mur/s1:broken", "mur/s2:nowhere"}
    assert next(f for f in failures if "s1" in f.component).plugin == "test-layouts"


def test_rules_read_from_options() -> None:
    assert rules_of("spotlight", {}).spotlight
    assert rules_of("incident_spotlight", {}).spotlight
    assert not rules_of("grid", {}).spotlight and rules_of("grid", {"spotlight": True}).spotlight
    assert rules_of("grid", {"hold": "2m", "timeout": 90}).hold == 120.0
    for bad in ({"spotlight": "yes"}, {"hold": -1}, {"timeout": "2 days"}, {"radius_m": 0}):
        with pytest.raises(ValueError):
            rules_of("grid", bad)


# -- the bodies operators send ----------------------------------------------------------

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
BODY_KEYS = st.sampled_from(
    ["layout", "cameras", "options", "pinned", "camera", "screen", "tile", "x"]
)


@given(
    st.dictionaries(
        BODY_KEYS, ANY_JSON | st.sampled_from(["cam-a", 3, True, ["cam-a"]]), max_size=4
    )
)
def test_the_body_parsers_take_anything_and_answer_a_change_or_a_wall_error(
    body: dict[str, Any],
) -> None:
    for parse in (parse_screen, parse_push):
        try:
            parsed = parse(body)
        except WallError as err:
            assert err.kind == "invalid" and str(err)
            continue
        if parse is parse_push:
            assert isinstance(parsed.camera, str) and body["camera"] == parsed.camera
            assert parsed.tile is None or (isinstance(parsed.tile, int) and 0 <= parsed.tile < 64)
        else:
            assert set(body) <= {"layout", "cameras", "options", "pinned"}
            assert parsed.pinned in (None, True, False)
            assert parsed.cameras is None or all(isinstance(c, str) for c in parsed.cameras)


@pytest.mark.parametrize(
    "body",
    [{}, {"pinned": "yes"}, {"cameras": "cam-a"}, {"cameras": ["CAM"]}, {"layout": "../x"},
     {"options": []}, {"options": {"": 1}}, {"nope": 1}, {"cameras": ["c"] * 65}],
)  # fmt: skip
def test_seen_screen_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(WallError):
        parse_screen(body)


@pytest.mark.parametrize(
    "body", [{}, {"camera": 1}, {"camera": "a", "tile": -1}, {"camera": "a", "tile": True},
             {"camera": "a", "tile": 64}, {"camera": "a", "tile": 1.5}, {"camera": "a", "x": 1}],
)  # fmt: skip
def test_seen_push_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(WallError):
        parse_push(body)


@given(
    st.one_of(
        st.none(),
        st.text(max_size=60),
        st.lists(st.sampled_from([*EVENT_NAMES, "nope", " ", ""]), max_size=6).map(",".join),
    )
)
def test_the_events_query_is_a_set_of_known_names_or_a_value_error(raw: str | None) -> None:
    try:
        names = parse_events(raw)
    except ValueError as err:
        assert "event" in str(err)
        return
    assert names and names <= set(EVENT_NAMES)
    if raw is not None and raw.strip(","):
        named = {n.strip() for n in raw.split(",") if n.strip()}
        assert names == (named or set(EVENT_NAMES))
