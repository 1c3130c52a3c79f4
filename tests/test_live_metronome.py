"""The shared timer of the live checks (csuhub.live.metronome) and the live
socket that tells its viewer before a close frame (csuhub.web.live)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from csuhub.live.metronome import Metronome
from csuhub.live.viewer import Viewer
from csuhub.web.live import LiveSocket


async def test_members_wake_together_at_multiples_of_the_period() -> None:
    loop = asyncio.get_running_loop()
    period = [0.05]
    metronome = Metronome(lambda: period[0])
    events = [asyncio.Event() for _ in range(3)]
    woken: list[list[float]] = [[], [], []]
    scheduled: list[float] = []
    call_at = loop.call_at

    def recording_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
        if getattr(callback, "__self__", None) is metronome:
            scheduled.append(when)
        return call_at(when, callback, *args, **kw)

    loop.call_at = recording_call_at  # type: ignore[method-assign]
    ticks: list[list[int]] = [[], [], []]

    async def member(i: int) -> None:
        leave = metronome.join(events[i])
        try:
            for _ in range(3):
                await events[i].wait()
                events[i].clear()
                woken[i].append(loop.time())
                ticks[i].append(metronome.ticks)
        finally:
            leave()

    await asyncio.sleep(0.013)  # joined at different moments, woken at the same ones
    first = asyncio.create_task(member(0))
    await asyncio.sleep(0.011)
    rest = [asyncio.create_task(member(i)) for i in (1, 2)]
    await asyncio.gather(first, *rest)
    loop.call_at = call_at  # type: ignore[method-assign]
    assert ticks[1] == ticks[2]  # the same ticks of the one timer
    assert ticks[0] == [1, 2, 3] and ticks[1] in ([1, 2, 3], [2, 3, 4])
    # each tick was set for a multiple of the period on the loop's clock
    assert len(scheduled) >= 4
    assert all(abs(at / 0.05 - round(at / 0.05)) < 1e-6 for at in scheduled)
    assert all(b > a for a, b in itertools.pairwise(woken[0]))
    assert metronome.members == 0 and metronome._timer is None  # no member: no timer


async def test_a_new_period_applies_from_the_next_tick() -> None:
    period = [0.02]
    metronome = Metronome(lambda: period[0])
    event = asyncio.Event()
    leave = metronome.join(event)
    await asyncio.wait_for(event.wait(), 1)
    event.clear()
    period[0] = 3600.0
    await asyncio.wait_for(event.wait(), 1)  # the tick already set
    event.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(event.wait(), 0.2)
    leave()


async def test_the_viewer_hears_of_the_close_before_the_close_frame() -> None:
    """Whoever closes the socket (this module, or aiohttp on a protocol error
    or the client's close frame), the viewer stops writing straight to the
    transport first: nothing may follow a close frame."""
    ws = LiveSocket()

    async def never(_: object) -> None:
        raise AssertionError("not sent")

    viewer = Viewer(never, never)
    ws.viewer = viewer
    with pytest.raises(RuntimeError):  # not prepared: aiohttp refuses, after the viewer knew
        await ws.close()
    assert viewer.socket_closed
