"""A viewer's outbox (csuhub.live.viewer): bounded, never waiting, skipping to
the next keyframe when full, disconnecting a viewer that stays behind."""

from __future__ import annotations

import asyncio
import json

from csuhub.live.fmp4 import Fragment
from csuhub.live.viewer import Limits, Viewer


def _fragments(count: int, gop: int = 10, size: int = 1000) -> list[Fragment]:
    return [
        Fragment(i.to_bytes(2, "big") * (size // 2), keyframe=i % gop == 0, samples=1)
        for i in range(count)
    ]


class Sink:
    """A socket: ``stuck`` never completes a send (a viewer that stopped reading)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.texts: list[dict[str, object]] = []
        self.binary: list[bytes] = []
        self._never = asyncio.Event()

    async def text(self, data: str) -> None:
        if self.stuck:
            await self._never.wait()
        self.texts.append(json.loads(data))

    async def bytes(self, data: bytes) -> None:
        if self.stuck:
            await self._never.wait()
        self.binary.append(data)


async def test_a_stuck_viewer_does_not_hold_up_another() -> None:
    limits = Limits(max_bytes=20_000, max_items=100, slow_limit=60)
    fast_sink, slow_sink = Sink(), Sink(stuck=True)
    fast = Viewer(fast_sink.text, fast_sink.bytes, limits)
    slow = Viewer(slow_sink.text, slow_sink.bytes, limits)
    pumps = [asyncio.create_task(v.pump()) for v in (fast, slow)]
    for v in (fast, slow):
        v.start([{"type": "init"}], b"INIT", [])
    frags = _fragments(500)
    for i, fragment in enumerate(frags):
        for v in (fast, slow):
            v.offer(fragment)  # never waits: a plain call
        if i % 5 == 4:
            await asyncio.sleep(0)  # the fast one's socket takes what it is given
    for _ in range(20):
        await asyncio.sleep(0)
    got = b"".join(fast_sink.binary[1:])
    assert fast_sink.binary[0] == b"INIT" and got == b"".join(f.data for f in frags)
    assert fast.skips == 0 and fast.dropped == 0
    # the stuck one: bounded, skipped, and what it holds starts at a keyframe
    assert slow.queued_bytes <= limits.max_bytes and slow.skips > 0
    first = next(item for kind, item in slow._queue if kind == 2)
    assert int.from_bytes(first[:2], "big") % 10 == 0  # its number is a keyframe's
    for task in pumps:
        task.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)


async def test_a_viewer_behind_for_too_long_is_kicked() -> None:
    now = [0.0]
    sink = Sink(stuck=True)
    viewer = Viewer(
        sink.text,
        sink.bytes,
        Limits(max_bytes=5_000, max_items=100, slow_limit=10),
        clock=lambda: now[0],
    )
    viewer.start([], b"INIT", [])
    for fragment in _fragments(40):
        viewer.offer(fragment)
    assert viewer.skips > 0 and not viewer.kicked.is_set()
    now[0] = 11.0
    for fragment in _fragments(40):
        viewer.offer(fragment)
    assert viewer.too_slow and viewer.kicked.is_set() and viewer.closed


async def test_control_messages_are_never_dropped_and_restart_drops_old_media() -> None:
    sink = Sink()
    viewer = Viewer(sink.text, sink.bytes, Limits(max_bytes=3_000, max_items=3))
    viewer.start([{"type": "init", "n": 1}], b"INIT1", [])
    for fragment in _fragments(25):
        viewer.offer(fragment)
    viewer.stop_media({"type": "offline", "reason": "gone"})
    viewer.offer(_fragments(2)[1])  # not a keyframe: dropped until one comes
    viewer.start([{"type": "online"}, {"type": "init", "n": 2}], b"INIT2", _fragments(3))
    pump = asyncio.create_task(viewer.pump())
    await asyncio.sleep(0.01)
    assert [t["type"] for t in sink.texts] == ["init", "offline", "online", "init"]
    assert sink.binary[0] == b"INIT1" and sink.binary[1] == b"INIT2"
    # after the second init: the three fragments of the GOP in one frame
    assert sink.binary[2] == b"".join(f.data for f in _fragments(3))
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)


async def test_a_new_viewer_starts_at_the_cached_keyframe() -> None:
    sink = Sink()
    viewer = Viewer(sink.text, sink.bytes)
    gop = _fragments(14)[10:]  # keyframe 10, then 11..13
    viewer.start([{"type": "init"}], b"INIT", gop)
    viewer.offer(_fragments(15)[14])
    pump = asyncio.create_task(viewer.pump())
    await asyncio.sleep(0.01)
    assert sink.binary == [b"INIT", b"".join(f.data for f in _fragments(15)[10:])]
    assert viewer.sent_fragments == 5
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
