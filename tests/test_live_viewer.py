"""A viewer's outbox (csuhub.live.viewer): bounded, never waiting, skipping to
the next keyframe when full, disconnecting a viewer that stays behind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.live.fmp4 import Fragment
from csuhub.live.viewer import DIRECT_LIMIT, Limits, Viewer
from csuhub.live.wsframe import binary_frame


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


class Transport:
    """An asyncio transport's writing side: ``backlog`` bytes the kernel has not taken."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing


async def test_a_viewer_that_keeps_up_gets_the_prebuilt_frame_directly_and_in_order() -> None:
    sink, transport = Sink(), Transport()
    viewer = Viewer(sink.text, sink.bytes, transport=transport)  # type: ignore[arg-type]
    frags = _fragments(30)
    frames = [binary_frame(f.data) for f in frags]
    viewer.start([{"type": "init"}], b"INIT", [])
    viewer.offer(frags[0], frames[0])  # the init is queued: this waits behind it
    assert transport.written == [] and viewer.direct == 0
    pump = asyncio.create_task(viewer.pump())
    await asyncio.sleep(0.01)
    assert sink.binary == [b"INIT", frags[0].data]
    for i in range(1, 10):  # nothing queued: straight to the transport, the same bytes
        viewer.offer(frags[i], frames[i])
    assert transport.written == frames[1:10] and all(
        a is b for a, b in zip(transport.written, frames[1:10], strict=True)
    )
    transport.backlog = DIRECT_LIMIT + 1  # the kernel stopped taking: behind, queued
    viewer.offer(frags[10], frames[10])
    transport.backlog = 0
    viewer.offer(frags[11], frames[11])  # queued behind 10 (order), not direct
    assert len(transport.written) == 9
    await asyncio.sleep(0.01)
    assert sink.binary[2:] == [frags[10].data + frags[11].data]
    viewer.offer(frags[12], frames[12])  # caught up: direct again
    viewer.socket_closing()  # the close frame goes: nothing may follow it
    viewer.offer(frags[13], frames[13])
    assert transport.written[-1] is frames[12] and len(transport.written) == 10
    assert viewer.sent_fragments == 13 and viewer.direct == 10
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)


@given(st.integers(0, 70_000) | st.sampled_from([0, 125, 126, 65535, 65536]))
def test_the_prebuilt_frame_is_what_aiohttp_would_write(size: int) -> None:
    from aiohttp._websocket.writer import WebSocketWriter

    class Capture:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: bytes) -> None:
            self.data += data

        def is_closing(self) -> bool:
            return False

    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    capture = Capture()
    writer = WebSocketWriter(None, capture)  # type: ignore[arg-type]  # a server's: no mask
    writer._write_websocket_frame(payload, 2, 0)  # what send_bytes writes uncompressed
    assert binary_frame(payload) == bytes(capture.data)


class SlowPathViewer(Viewer):
    """The same outbox with the direct path worked out afresh for every fragment."""

    def offer(self, fragment: Fragment, frame: bytes | None = None) -> None:
        self._offer(fragment, frame)


_OFFER = st.tuples(st.just("offer"), st.booleans())  # keyframe?
OPS = st.lists(
    st.one_of(
        _OFFER,
        _OFFER,
        _OFFER,  # fragments are most of what happens
        st.tuples(st.sampled_from(["control", "start", "stop_media"]), st.none()),
        st.tuples(st.just("backlog"), st.sampled_from([0, DIRECT_LIMIT, DIRECT_LIMIT + 1])),
        st.tuples(st.just("pump"), st.integers(1, 3)),
        # the ends are rarer: after one, little is left to compare
        st.tuples(st.sampled_from(["transport_closing", "socket_closing", "close"]), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_the_kept_direct_path_behaves_as_one_worked_out_per_fragment(ops: list[Any]) -> None:
    """Whatever happens between fragments (messages queued, restarts, a socket
    closing, the kernel stopping), the viewer that keeps its direct-path flag
    writes exactly what one deciding afresh each time writes, in the same
    order; and nothing reaches the transport once its socket is closing."""

    async def run(kind: type[Viewer]) -> tuple[list[bytes], list[Any], list[Any], int]:
        sink, transport = Sink(), Transport()
        viewer = kind(sink.text, sink.bytes, Limits(max_bytes=5000, max_items=4, slow_limit=60),
                      transport=transport)  # type: ignore[arg-type]  # fmt: skip
        pump = asyncio.create_task(viewer.pump())
        written_when_closed: list[bytes] = []
        n = 0
        for op, arg in ops:
            if op == "offer":
                data = n.to_bytes(2, "big") * 300
                n += 1
                fragment = Fragment(data, keyframe=arg, samples=1)
                before = len(transport.written)
                viewer.offer(fragment, binary_frame(data))
                if viewer.socket_closed or transport.closing:
                    written_when_closed += transport.written[before:]
            elif op == "control":
                viewer.control({"type": "note", "n": n})
            elif op == "start":
                viewer.start([{"type": "init"}], b"INIT", [])
            elif op == "stop_media":
                viewer.stop_media({"type": "offline"})
            elif op == "backlog":
                transport.backlog = arg
            elif op == "transport_closing":
                transport.closing = True
            elif op == "socket_closing":
                viewer.socket_closing()
            elif op == "close":
                viewer.close()
            else:
                for _ in range(arg):
                    await asyncio.sleep(0)
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        return transport.written, sink.binary, sink.texts, len(written_when_closed)

    kept = asyncio.run(run(Viewer))
    fresh = asyncio.run(run(SlowPathViewer))
    assert kept == fresh
    assert kept[3] == 0
