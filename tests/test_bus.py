from __future__ import annotations

import asyncio
import logging
from dataclasses import FrozenInstanceError, dataclass
from typing import ClassVar

import pytest

from csuhub.bus import EventBus
from csuhub.events import MATCH_ALL, CameraStateChanged, Event


@dataclass(frozen=True, kw_only=True, slots=True)
class Ping(Event):
    name: ClassVar[str] = "ping"
    n: int
    camera_id: str = "a"


@dataclass(frozen=True, kw_only=True, slots=True)
class SubPing(Ping):
    name: ClassVar[str] = "sub_ping"


async def test_fire_reaches_listener_in_order() -> None:
    bus = EventBus()
    seen: list[int] = []
    bus.listen(Ping, lambda e: seen.append(e.n))
    for i in range(5):
        bus.fire(Ping(n=i))
    assert seen == []  # fire never runs listeners inside the caller
    await bus.drain()
    assert seen == [0, 1, 2, 3, 4]


async def test_unsubscribe_stops_delivery_and_leaves_nothing() -> None:
    bus = EventBus()
    seen: list[int] = []
    unsub = bus.listen(Ping, lambda e: seen.append(e.n))
    unsub_m = bus.listen(Ping, lambda e: seen.append(-e.n), match={"camera_id": "a"})
    bus.fire(Ping(n=1))
    await bus.drain()
    unsub()
    unsub_m()
    unsub()  # idempotent
    bus.fire(Ping(n=2))
    await bus.drain()
    assert seen == [1, -1]
    assert bus.listener_count() == 0


async def test_listen_once() -> None:
    bus = EventBus()
    seen: list[int] = []
    bus.listen_once(Ping, lambda e: seen.append(e.n), where=lambda e: e.n > 1)
    for i in range(5):
        bus.fire(Ping(n=i))
    await bus.drain()
    assert seen == [2]
    assert bus.listener_count() == 0


async def test_match_all_and_subclasses() -> None:
    bus = EventBus()
    everything: list[str] = []
    pings: list[str] = []
    bus.listen(MATCH_ALL, lambda e: everything.append(e.name))
    bus.listen(Ping, lambda e: pings.append(e.name))
    bus.fire(Ping(n=1))
    bus.fire(SubPing(n=2))
    bus.fire(CameraStateChanged(camera_id="c", old_state=None, new_state="online"))
    await bus.drain()
    assert everything == ["ping", "sub_ping", "camera_state_changed"]
    assert pings == ["ping", "sub_ping"]


async def test_indexed_match_and_where_filters() -> None:
    bus = EventBus()
    got: dict[str, list[int]] = {"a": [], "b": [], "even_b": []}
    bus.listen(Ping, lambda e: got["a"].append(e.n), match={"camera_id": "a"})
    bus.listen(Ping, lambda e: got["b"].append(e.n), match={"camera_id": "b"})
    bus.listen(
        Ping,
        lambda e: got["even_b"].append(e.n),
        match={"camera_id": "b"},
        where=lambda e: e.n % 2 == 0,
    )
    for i, cam in enumerate("abab"):
        bus.fire(Ping(n=i, camera_id=cam))
    await bus.drain()
    assert got == {"a": [0, 2], "b": [1, 3], "even_b": []}


async def test_multi_key_match() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.listen(
        CameraStateChanged,
        lambda e: got.append(e.camera_id),
        match={"camera_id": "c1", "new_state": "offline"},
    )
    bus.fire(CameraStateChanged(camera_id="c1", old_state=None, new_state="online"))
    bus.fire(CameraStateChanged(camera_id="c1", old_state="online", new_state="offline"))
    bus.fire(CameraStateChanged(camera_id="c2", old_state="online", new_state="offline"))
    await bus.drain()
    assert got == ["c1"]


async def test_match_on_unknown_field_is_refused() -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match="no field"):
        bus.listen(Ping, print, match={"camera": "a"})
    with pytest.raises(TypeError):
        bus.listen(str, print)  # type: ignore[arg-type]


async def test_failing_listener_is_logged_and_others_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[int] = []

    def broken(event: Ping) -> None:
        raise RuntimeError("boom")

    bus.listen(Ping, broken)
    bus.listen(Ping, lambda e: seen.append(e.n))
    with caplog.at_level(logging.ERROR, logger="csuhub.bus"):
        bus.fire(Ping(n=7))
        bus.fire(Ping(n=8))
        await bus.drain()
    assert seen == [7, 8]
    assert "broken" in caplog.text and "boom" in caplog.text


async def test_async_listener_runs_and_its_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[int] = []

    async def slow(event: Ping) -> None:
        await asyncio.sleep(0.01)
        if event.n == 2:
            raise ValueError("bad two")
        seen.append(event.n)

    bus.listen(Ping, slow)
    with caplog.at_level(logging.ERROR, logger="csuhub.bus"):
        for i in range(3):
            bus.fire(Ping(n=i))
        await bus.drain()
    assert sorted(seen) == [0, 1]
    assert "bad two" in caplog.text


async def test_listener_firing_does_not_recurse() -> None:
    bus = EventBus()
    order: list[int] = []

    def relay(event: Ping) -> None:
        order.append(event.n)
        if event.n < 3000:  # deeper than Python's recursion limit if it recursed
            bus.fire(Ping(n=event.n + 1))

    bus.listen(Ping, relay)
    bus.fire(Ping(n=0))
    await bus.drain()
    assert order == list(range(3001))


async def test_flood_yields_to_the_loop() -> None:
    bus = EventBus()
    ticks: list[int] = []
    count = 0

    def listener(event: Ping) -> None:
        nonlocal count
        count += 1

    async def ticker() -> None:
        for _i in range(3):
            ticks.append(count)
            await asyncio.sleep(0)

    bus.listen(Ping, listener)
    for i in range(20_000):
        bus.fire(Ping(n=i))
    task = asyncio.create_task(ticker())
    await bus.drain()
    await task
    assert count == 20_000
    # the ticker ran while the flood was still being dispatched
    assert any(0 < t < 20_000 for t in ticks)


async def test_wait_for_and_events_are_frozen() -> None:
    bus = EventBus()
    waiter = asyncio.create_task(bus.wait_for(Ping, match={"camera_id": "z"}, timeout=2))
    await asyncio.sleep(0)
    bus.fire(Ping(n=1))
    bus.fire(Ping(n=2, camera_id="z"))
    event = await waiter
    assert event.n == 2
    with pytest.raises(FrozenInstanceError):
        event.n = 3  # type: ignore[misc]
    assert bus.listener_count() == 0
    assert event.as_dict()["event"] == "ping"


async def test_fire_threadsafe() -> None:
    bus = EventBus()
    seen: list[int] = []
    bus.listen(Ping, lambda e: seen.append(e.n))
    bus.fire(Ping(n=0))
    await asyncio.to_thread(bus.fire_threadsafe, Ping(n=1))
    await asyncio.sleep(0.01)
    await bus.drain()
    assert seen == [0, 1]


async def test_once_with_match_removed_during_dispatch_keeps_bus_alive() -> None:
    """Regression: removing the last indexed subscription while dispatching broke the bus."""
    bus = EventBus()
    once: list[int] = []
    later: list[int] = []
    bus.listen_once(Ping, lambda e: once.append(e.n), match={"camera_id": "a"})
    bus.fire(Ping(n=1))
    await asyncio.wait_for(bus.drain(), 1)
    bus.listen(Ping, lambda e: later.append(e.n))
    bus.fire(Ping(n=2))
    await asyncio.wait_for(bus.drain(), 1)
    assert once == [1]
    assert later == [2]
