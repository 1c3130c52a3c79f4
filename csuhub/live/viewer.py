"""One viewer's outbox: what the upstream hands it, bounded, and the task
that writes it to the viewer's socket.

Why this shape: the upstream reader calls :meth:`Viewer.offer` for every
fragment and every viewer, and ``offer`` never waits. A viewer whose socket
is slow fills its own queue and nothing else: when the queue is full its
queued fragments are dropped and it skips to the next keyframe fragment (a
decoder can only start again at one). A viewer that stays behind longer
than ``slow_limit`` is told so and disconnected, instead of watching a
picture that is always seconds old. Control messages (``init``,
``offline``, ``online``) are never dropped.

Fragments waiting together leave in one WebSocket frame: a viewer that fell
behind costs one send, not one per fragment.

Why a direct path: a viewer that keeps up (nothing queued, its socket's
user-space buffer under :data:`DIRECT_LIMIT`) gets the fragment's
WebSocket frame, built once by the upstream for all viewers
(:mod:`csuhub.live.wsframe`), written to its transport at once inside
``offer``: no queue, no task woken, one system call, as a bare relay does.
Order is kept because the direct path is taken only when the queue is
empty, and whatever the writer task popped it has already handed to the
transport (aiohttp writes a frame before its first await). Anything else
(control messages, init segments, a viewer behind) goes through the queue
and its writer task, with every bound above.

Why the direct path is a flag: ``offer`` runs for every viewer and every
fragment (64 viewers of 4 cameras: 500 times a second), and most of a bare
relay's cost is the one ``send``. Whether the viewer may be written directly
(open, at a keyframe, nothing queued, its socket not closing) changes only
when something is queued, the picture restarts or the socket closes, so it is
worked out on the slow path and kept until then; each fragment still checks
the live transport's backlog and state. The socket's owner calls
:meth:`Viewer.socket_closing` before a close frame goes out
(``csuhub.web.live``): nothing may follow a close frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from csuhub.live.fmp4 import Fragment

#: kinds of outbox items
TEXT, INIT, MEDIA = 0, 1, 2

#: a WebSocket frame of fragments holds at most this much (a browser appends it whole)
MAX_FRAME = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """How far a viewer may fall behind."""

    #: queued fragment bytes before the viewer skips to the next keyframe
    max_bytes: int = 4 * 1024 * 1024
    #: queued fragments before it skips
    max_items: int = 250
    #: seconds behind (skipping, not caught up) before it is disconnected
    slow_limit: float = 15.0


#: a viewer whose transport holds more than this (bytes not yet taken by the
#: kernel) is behind: its fragments are queued, not written directly
DIRECT_LIMIT = 64 * 1024

SendText = Callable[[str], Awaitable[Any]]
SendBytes = Callable[[bytes], Awaitable[Any]]


class Viewer:
    """The outbox of one viewer; ``pump`` writes it with ``send_text``/``send_bytes``."""

    def __init__(
        self,
        send_text: SendText,
        send_bytes: SendBytes,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
        transport: asyncio.WriteTransport | None = None,
    ) -> None:
        self.send_text = send_text
        self.send_bytes = send_bytes
        self.limits = limits or Limits()
        self.clock = clock
        self.name = name
        #: the socket's transport, for direct writes of pre-built frames (None: never)
        self.transport = transport
        #: the WebSocket is closing: no frame may follow its close frame
        self.socket_closed = False
        #: fragments may go straight to the transport (see the module's docstring)
        self._direct = False
        self._queue: deque[tuple[int, Any]] = deque()
        self._media_bytes = 0
        self._media_items = 0
        self._wake = asyncio.Event()
        #: set when it stayed behind too long: its socket is to be closed, even
        #: while a send to it is stuck
        self.kicked = asyncio.Event()
        #: no keyframe since the start, a restart or a skip: fragments are dropped
        self.waiting_key = True
        #: when it fell behind (None: caught up)
        self.behind_since: float | None = None
        #: set once it stayed behind too long; the pump ends
        self.too_slow = False
        #: set when the hub is stopping: its socket is closed as "going away"
        self.closing = False
        self.closed = False
        self.skips = 0
        self.dropped = 0
        self.sent_bytes = 0
        self.sent_fragments = 0
        #: fragments written straight to the transport
        self.direct = 0
        self.started = clock()

    # -- what the upstream calls (never waits) ------------------------------------------

    def control(self, message: dict[str, Any]) -> None:
        """A text message that is never dropped."""
        self._put(TEXT, json.dumps(message, separators=(",", ":")))

    def start(self, messages: list[dict[str, Any]], init: bytes, gop: list[Fragment]) -> None:
        """(Re)start the picture: ``messages``, the init segment, then the
        fragments since the latest keyframe; whatever was queued of an earlier
        stream is dropped."""
        self._drop_media()
        for message in messages:
            self.control(message)
        self._put(INIT, init)
        self.waiting_key = True
        for fragment in gop:
            self.offer(fragment)

    def stop_media(self, message: dict[str, Any]) -> None:
        """The stream ended (offline): queued fragments are of no use any more."""
        self._drop_media()
        self.waiting_key = True
        self.control(message)

    def offer(self, fragment: Fragment, frame: bytes | None = None) -> None:
        """Hand the viewer a fragment; ``frame``: the same fragment as a
        WebSocket binary frame, written directly when the viewer keeps up."""
        if self._direct and frame is not None:
            transport = self.transport
            assert transport is not None
            if transport.get_write_buffer_size() <= DIRECT_LIMIT and not transport.is_closing():
                transport.write(frame)
                self.sent_bytes += len(fragment.data)
                self.sent_fragments += 1
                self.direct += 1
                return
            self._direct = False
        self._offer(fragment, frame)

    def _offer(self, fragment: Fragment, frame: bytes | None) -> None:
        if self.closed:
            return
        if self.waiting_key:
            if not fragment.keyframe:
                self.dropped += 1
                return
            self.waiting_key = False
        size = len(fragment.data)
        transport = self.transport
        if (
            frame is not None
            and transport is not None
            and not self._queue
            and not self.socket_closed
            and transport.get_write_buffer_size() <= DIRECT_LIMIT
            and not transport.is_closing()
        ):
            self._direct = True  # until something is queued, or the socket closes
            transport.write(frame)
            self.sent_bytes += size
            self.sent_fragments += 1
            self.direct += 1
            return
        limits = self.limits
        if self._media_items >= limits.max_items or self._media_bytes + size > limits.max_bytes:
            self._skip()
            if fragment.keyframe and size <= limits.max_bytes:
                self.waiting_key = False  # the queue is empty now: start again here
            else:
                self.dropped += 1
                return
        self._put(MEDIA, fragment.data)

    def socket_closing(self) -> None:
        """The socket's close frame is about to go: nothing is written straight
        to the transport after it (what the pump still sends, aiohttp refuses)."""
        self.socket_closed = True
        self._direct = False

    def _skip(self) -> None:
        now = self.clock()
        self.skips += 1
        self.dropped += self._media_items
        self._drop_media()
        self.waiting_key = True
        if self.behind_since is None:
            self.behind_since = now
        elif now - self.behind_since > self.limits.slow_limit:
            self.too_slow = True
            self.closed = True
            self._direct = False
            self._wake.set()
            self.kicked.set()

    def _put(self, kind: int, payload: Any) -> None:
        self._direct = False  # behind what is queued now
        if self.closed:
            return
        self._queue.append((kind, payload))
        if kind == MEDIA:
            self._media_bytes += len(payload)
            self._media_items += 1
        self._wake.set()

    def _drop_media(self) -> None:
        if self._media_items:
            self._queue = deque(item for item in self._queue if item[0] != MEDIA)
            self._media_bytes = 0
            self._media_items = 0

    @property
    def queued_bytes(self) -> int:
        return self._media_bytes

    def close(self) -> None:
        self.closed = True
        self._direct = False
        self._wake.set()

    # -- the writer task ------------------------------------------------------------------

    async def pump(self) -> None:
        """Write the outbox until the viewer is closed (or too slow)."""
        while not self.closed:
            if not self._queue:
                if self.behind_since is not None and not self.waiting_key:
                    self.behind_since = None  # caught up
                self._wake.clear()
                await self._wake.wait()
                continue
            queue = self._queue
            kind, payload = queue.popleft()
            if kind == TEXT:
                await self.send_text(payload)
                continue
            if kind == INIT:
                await self.send_bytes(payload)
                continue
            parts = [payload]
            size = len(payload)
            while queue and queue[0][0] == MEDIA and size + len(queue[0][1]) <= MAX_FRAME:
                size += len(queue[0][1])
                parts.append(queue.popleft()[1])
            self._media_bytes -= size
            self._media_items -= len(parts)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            await self.send_bytes(data)
            self.sent_bytes += size
            self.sent_fragments += len(parts)

    async def flushed(self) -> None:
        """Until everything queued is written (a last message before closing)."""
        while self._queue and not self.closed:  # noqa: ASYNC110 - rare, and bounded by the caller
            await asyncio.sleep(0.01)

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queued_bytes": self._media_bytes,
            "queued_fragments": self._media_items,
            "sent_bytes": self.sent_bytes,
            "sent_fragments": self.sent_fragments,
            "direct": self.direct,
            "skips": self.skips,
            "dropped": self.dropped,
            "behind": self.behind_since is not None,
        }
