"""The ffmpeg backend's segment list reader (``csuhub_ffmpeg.segment_list``):
lines in order, one at a time, whatever the pipe's chunks; nothing after stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable

import pytest
from csuhub_ffmpeg.segment_list import MAX_LINE, SegmentListReader
from hypothesis import given, settings
from hypothesis import strategies as st


class Handler:
    """Takes each line, and answers for it when the test says (or at once)."""

    def __init__(self, *, hold: bool = False, skip: frozenset[bytes] = frozenset()) -> None:
        self.lines: list[bytes] = []
        self.hold = hold
        self.skip = skip
        self.resumes: list[Callable[[], None]] = []
        self.busy = 0

    def __call__(self, line: bytes, received: float, resume: Callable[[], None]) -> bool:
        assert self.busy == 0, "a line was handed in before the previous one was answered"
        assert received > 0
        self.lines.append(line)
        if line in self.skip:
            return False
        self.busy += 1
        if self.hold:
            self.resumes.append(self._answer(resume))
        else:
            asyncio.get_running_loop().call_soon(self._answer(resume))
        return True

    def _answer(self, resume: Callable[[], None]) -> Callable[[], None]:
        def answer() -> None:
            self.busy -= 1
            resume()

        return answer


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


lines_strategy = st.lists(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(lines=lines_strategy, tail=st.binary(max_size=20), cuts=st.lists(st.integers(0, 900)))
def test_every_line_once_in_order_whatever_the_chunks(
    lines: list[bytes], tail: bytes, cuts: list[int]
) -> None:
    """However the pipe splits the bytes, the handler sees ffmpeg's lines in order,
    each once, one at a time, the last one even without its newline; ``done``
    only once every line was answered."""
    tail = tail.replace(b"\n", b"")
    data = b"".join(lines) + tail
    skip = frozenset(lines[::3])

    async def run() -> Handler:
        handler = Handler(skip=skip)
        reader = SegmentListReader(handler, name="cam")
        for chunk in split(data, cuts):
            reader.data_received(chunk)
            await asyncio.sleep(0)
        reader.connection_lost(None)
        await asyncio.wait_for(reader.done, 5)
        assert handler.busy == 0
        return handler

    handler = asyncio.run(run())
    assert handler.lines == lines + ([tail] if tail else [])


async def test_the_next_line_waits_for_the_answer() -> None:
    """A burst of lines is handed over one at a time: ``done`` waits for the last
    answer, and lines that arrive meanwhile keep their order."""
    handler = Handler(hold=True)
    reader = SegmentListReader(handler, name="cam")
    reader.data_received(b"a\nb\n")
    assert handler.lines == [b"a\n"]
    reader.data_received(b"c\n")
    reader.connection_lost(None)
    assert handler.lines == [b"a\n"] and not reader.done.done()
    handler.resumes.pop()()
    assert handler.lines == [b"a\n", b"b\n"]
    handler.resumes.pop()()
    handler.resumes.pop()()
    assert handler.lines == [b"a\n", b"b\n", b"c\n"]
    assert reader.done.done()


async def test_stop_hands_over_nothing_more() -> None:
    """After stop() (the run is over, its recovery takes what is left), queued lines
    are dropped, a late answer starts nothing, and ``done`` is settled."""
    handler = Handler(hold=True)
    reader = SegmentListReader(handler, name="cam")
    reader.data_received(b"a\nb\nc\n")
    reader.stop()
    assert reader.done.done()
    handler.resumes.pop()()
    reader.data_received(b"d\n")
    reader.connection_lost(None)
    assert handler.lines == [b"a\n"]


async def test_an_over_long_line_is_dropped_and_reading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Handler()
    reader = SegmentListReader(handler, name="cam-x")
    with caplog.at_level(logging.WARNING):
        reader.data_received(b"a\n" + b"x" * (MAX_LINE + 1))
        reader.data_received(b"still the same line\nb\n")
    reader.connection_lost(None)
    await asyncio.wait_for(reader.done, 5)
    assert handler.lines == [b"a\n", b"b\n"]
    assert "cam-x" in caplog.text and "dropped" in caplog.text


async def test_a_failing_handler_does_not_stop_the_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[bytes] = []

    def handle(line: bytes, received: float, resume: Callable[[], None]) -> bool:
        seen.append(line)
        if line == b"bad\n":
            raise RuntimeError("boom")
        return False

    reader = SegmentListReader(handle, name="cam")
    with caplog.at_level(logging.ERROR):
        reader.data_received(b"bad\ngood\n")
    reader.connection_lost(None)
    await asyncio.wait_for(reader.done, 5)
    assert seen == [b"bad\n", b"good\n"]
    assert "boom" in caplog.text


async def test_reads_a_real_pipe_to_its_end() -> None:
    """On a real pipe through the loop's own transport: every line, then ``done``
    when the writer closes its end."""
    handler = Handler()
    out, into = os.pipe()
    loop = asyncio.get_running_loop()
    transport, reader = await loop.connect_read_pipe(
        lambda: SegmentListReader(handler, name="cam"), os.fdopen(out, "rb", buffering=0)
    )
    try:
        os.write(into, b"000001.mp4,0.0,10.0\n000002.mp4,10.0,")
        await asyncio.sleep(0.05)
        os.write(into, b"20.0\n")
        os.close(into)
        await asyncio.wait_for(reader.done, 5)
    finally:
        transport.close()
    assert handler.lines == [b"000001.mp4,0.0,10.0\n", b"000002.mp4,10.0,20.0\n"]


class _Processes:
    def __init__(self) -> None:
        self.terminated: list[object] = []

    async def terminate(self, proc: object) -> int:
        self.terminated.append(proc)
        return 0


class _Sink:
    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []

    def recorder_state(self, camera_id: str, state: str, reason: str = "") -> None:
        self.states.append((state, reason))

    def segment_dir(self, camera_id: str, when: float | None) -> str:
        return "/nonexistent"


async def test_the_stall_watchdog_moves_with_each_segment_and_fires_once() -> None:
    """The deadline is twice the segment time after the last segment (plus the
    start-up grace before the first): segments keep it away without the loop
    waking for it, and silence stops ffmpeg once, saying why."""
    from types import SimpleNamespace

    from csuhub_ffmpeg import OPTIONS, FfmpegBackend, _RunProgress

    processes = _Processes()
    backend = FfmpegBackend(SimpleNamespace(processes=processes), OPTIONS({"startup_grace": 0.3}))
    sink = _Sink()
    source = SimpleNamespace(url="rtsp://127.0.0.1:1/x", input_options={})
    recorder = backend.recorder("cam", source, sink, 0.1, False)  # type: ignore[arg-type]
    proc = SimpleNamespace(returncode=None)
    loop = asyncio.get_running_loop()
    run = _RunProgress(last_segment=loop.time())
    recorder._arm(proc, run, grace=True)  # deadline: 0.2 s + 0.3 s of grace
    await asyncio.sleep(0.35)
    assert not run.stalled
    for _ in range(6):  # a segment every 0.12 s, for 0.72 s: never stalled
        run.last_segment = loop.time()
        recorder._arm(proc, run, grace=False)
        await asyncio.sleep(0.12)
    assert not run.stalled and processes.terminated == []
    # one pending deadline, not one per segment
    timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
    assert sum(1 for h in timers if getattr(h, "_callback", None) == recorder._stalled) == 1
    await asyncio.sleep(0.3)  # silence: 2 x 0.1 s after the last segment
    assert run.stalled
    await asyncio.sleep(0.05)
    assert processes.terminated == [proc]
    assert [state for state, _ in sink.states] == ["retrying"]
    assert "stalled" in sink.states[0][1]
    await asyncio.sleep(0.3)  # and only once
    assert processes.terminated == [proc]
