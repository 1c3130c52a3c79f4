"""ffmpeg's segment list (``-segment_list pipe:1``), read in the loop's callbacks.

Why not ``asyncio.create_subprocess_exec``'s ``StreamReader`` and a task
awaiting ``readline()`` and then the sink: each list line then cost five
loop iterations (the pipe's read, the subprocess protocol's relay, the task
step that reads the line, the wake when the row is durable, the task step
after it). On a 2-core machine shared with the ffmpeg processes, the
interpreter runs every iteration on cold caches, about 0.1 ms each: with
10 s segments that was most of the hub's own CPU beyond hashing (issue 11,
B1). Here the pipe's ``data_received`` hands each line to the recorder at
once, and the sink's ``done`` callback starts the next: two iterations per
segment.

Lines are handled one at a time, in order: the next line waits until the
sink has answered for the previous one, as the task did. A camera's
segments are indexed in the order ffmpeg closed them (a burst at start-up or
after a stall would otherwise hash two of them at once, and the later one's
row could land first and record a gap the earlier one fills).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

#: ``handle(line, received, resume)``: True if it took the line and will call
#: ``resume()`` (on the loop) once done with it; False to go on to the next line.
Handler = Callable[[bytes, float, Callable[[], None]], bool]

#: no csv line of ffmpeg's is this long: such a "line" is dropped, not buffered for ever
MAX_LINE = 64 * 1024


class SegmentListReader(asyncio.Protocol):
    """One ffmpeg run's list: its lines, in order, to ``handle``."""

    def __init__(self, handle: Handler, *, name: str = "") -> None:
        self._handle = handle
        self._name = name
        self._buffer = bytearray()
        #: the rest of an over-long line is thrown away up to its newline
        self._skipping = False
        #: complete lines not handled yet, with the time each arrived
        self._lines: deque[tuple[bytes, float]] = deque()
        #: a line is with the handler (its ``resume`` not called yet)
        self._busy = False
        self._eof = False
        self._stopped = False
        #: inside _pump: a resume() called from the handler itself only frees the slot
        self._pumping = False
        #: resolves once the pipe has closed and every line was handled
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol -----------------------------------------------------

    def data_received(self, data: bytes) -> None:
        received = time.time()
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                self._lines.append((bytes(buffer[start : end + 1]), received))
            start = end + 1
        del buffer[:start]
        if len(buffer) > MAX_LINE:
            _LOGGER.warning("%s: a segment list line over %d bytes; dropped", self._name, MAX_LINE)
            buffer.clear()
            self._skipping = True
        self._pump()

    def eof_received(self) -> bool:
        return False  # the transport closes: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._buffer and not self._skipping:
            # ffmpeg's last line, without its newline (as readline() gave it at the end)
            self._lines.append((bytes(self._buffer), time.time()))
        self._buffer.clear()
        self._eof = True
        self._pump()

    # -- handling -------------------------------------------------------------

    def stop(self) -> None:
        """Handle no further line (the run is over: its recovery takes the rest).
        A line with the handler finishes; ``done`` resolves now."""
        self._stopped = True
        self._lines.clear()
        if not self.done.done():
            self.done.set_result(None)

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self._busy and not self._stopped and self._lines:
                line, received = self._lines.popleft()
                self._busy = True
                try:
                    took = self._handle(line, received, self._resume)
                except Exception:
                    # a bug handling one line must not stop the list: the run's
                    # recovery indexes what was not
                    _LOGGER.exception("%s: handling list line %r failed", self._name, line)
                    took = False
                if not took:
                    self._busy = False
        finally:
            self._pumping = False
        if not self._busy and self._eof and not self._lines and not self.done.done():
            self.done.set_result(None)

    def _resume(self) -> None:
        self._busy = False
        self._pump()
