"""Camera failures and returns, written to the logbook as the bus reports them.

A camera going offline is a ``camera.offline`` entry (``why``: the health
check's reason), its return a ``camera.online`` entry (``down_s``: how long it
was down), both by ``hub`` in the audit chain. A camera that comes online for
the first time (start-up, adoption) is no return and writes nothing; a
camera found offline at start-up that comes back is one (its stored state was
offline).

A flapping camera must not flood the journal: each camera may write at most
``burst`` entries per ``window`` seconds. A change beyond that is counted, not
written, and when the window has room again the camera's state at that moment
is written if it differs from the last one written, with the count of changes
left out (``flaps``). The logbook therefore always ends on the truth, and the
operator reads "offline (12 changes not logged)" instead of 24 lines. When
the hub stops, a camera still held back is settled at once.

Entries are written in order by one task reading a queue: the bus listener
decides synchronously, in event order, and never awaits the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csuhub.cameras.model import DEGRADED, OFFLINE, ONLINE
from csuhub.events import CameraStateChanged
from csuhub.logbook.journal import CAMERA_OFFLINE, CAMERA_ONLINE

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

WINDOW = 600.0
BURST = 4
UP = (ONLINE, DEGRADED)


@dataclass
class _Camera:
    logged: str | None = None  # the last kind written: CAMERA_OFFLINE or CAMERA_ONLINE
    down_since: float | None = None
    written: deque[float] = field(default_factory=deque)
    flaps: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class _Write:
    camera_id: str
    action: str
    params: dict[str, Any]


class CameraLog:
    """The per-camera decision (what to write, what to count) and the writer."""

    def __init__(
        self,
        write: Callable[[str, str, dict[str, Any]], Any],
        state_of: Callable[[str], str | None],
        *,
        window: float = WINDOW,
        burst: int = BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._state_of = state_of
        self.window = window
        self.burst = burst
        self._clock = clock
        self._cameras: dict[str, _Camera] = {}
        self._queue: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    # -- deciding (synchronous, in event order) ----------------------------------

    def on_event(self, event: CameraStateChanged) -> None:
        kind = _kind(event.new_state)
        if kind is None:
            return
        cam = self._cameras.setdefault(event.camera_id, _Camera())
        if kind == CAMERA_OFFLINE and cam.down_since is None:
            cam.down_since = time.time()
        if cam.timer is not None:  # over the burst: counted; the settle writes the truth
            cam.flaps += 1
            return
        if kind == CAMERA_ONLINE and cam.logged is None and event.old_state != OFFLINE:
            return  # online for the first time: no failure to return from
        if kind == cam.logged:
            return
        params = {"why": event.reason} if kind == CAMERA_OFFLINE else {"state": event.new_state}
        self._offer(event.camera_id, cam, kind, params)

    def _offer(
        self,
        camera_id: str,
        cam: _Camera,
        kind: str,
        params: dict[str, Any],
        *,
        change: bool = True,
    ) -> None:
        now = self._clock()
        while cam.written and now - cam.written[0] >= self.window:
            cam.written.popleft()
        if len(cam.written) >= self.burst:
            cam.flaps += change  # a settle that came a tick early is no change
            if cam.timer is None:
                delay = cam.written[0] + self.window - now
                loop = asyncio.get_running_loop()
                cam.timer = loop.call_later(max(delay, 0.0), self._settle, camera_id)
            return
        self._emit(camera_id, cam, kind, params, now)

    def _emit(
        self, camera_id: str, cam: _Camera, kind: str, params: dict[str, Any], now: float
    ) -> None:
        if kind == CAMERA_ONLINE:
            if cam.down_since is not None:
                params["down_s"] = round(time.time() - cam.down_since, 1)
            cam.down_since = None
        if cam.flaps:
            params["flaps"] = cam.flaps
            cam.flaps = 0
        cam.logged = kind
        cam.written.append(now)
        self._queue.put_nowait(_Write(camera_id, kind, params))

    def _settle(self, camera_id: str) -> None:
        """The window has room again: write the state the camera is in now if it
        is not the one last written (the changes counted go with the next entry)."""
        cam = self._cameras[camera_id]
        cam.timer = None
        found = self._truth(camera_id, cam)
        if found is not None:
            self._offer(camera_id, cam, *found, change=False)

    def _truth(self, camera_id: str, cam: _Camera) -> tuple[str, dict[str, Any]] | None:
        """The line the camera's current state needs, if the last one written
        does not say it."""
        state = self._state_of(camera_id) or ""
        kind = _kind(state)
        if kind is None or kind == cam.logged:
            return None
        if kind == CAMERA_OFFLINE:
            return kind, {"why": "unstable: offline after repeated changes"}
        return kind, {"state": state}

    # -- writing (one task, in order) --------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="logbook-cameras")

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                await self._write(item.camera_id, item.action, item.params)
            except Exception:
                _LOGGER.exception("logbook: could not write %s of %s", item.action, item.camera_id)

    async def close(self) -> None:
        """Settle now every camera held back by its burst (the journal ends on
        the truth, over the limit if need be), write what is queued, then stop."""
        for camera_id, cam in self._cameras.items():
            if cam.timer is not None:
                cam.timer.cancel()
                cam.timer = None
                found = self._truth(camera_id, cam)
                if found is not None:
                    self._emit(camera_id, cam, *found, self._clock())
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10.0)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _kind(state: str) -> str | None:
    if state == OFFLINE:
        return CAMERA_OFFLINE
    if state in UP:
        return CAMERA_ONLINE
    return None


#: the hubs listening now: a second call for one of them adds no second listener
#: (each change would be written twice)
_LISTENING: weakref.WeakSet[Hub] = weakref.WeakSet()


async def start_logbook(hub: Hub, stack: AsyncExitStack) -> None:
    """Listen for camera state changes for as long as the hub runs. Call it after
    the store opened and before the cameras start (so the first failure is
    seen); the unwind unsubscribes and writes what is queued. Calling it again
    for a hub already listening does nothing."""
    if hub in _LISTENING:
        return
    _LISTENING.add(hub)
    stack.callback(_LISTENING.discard, hub)

    async def write(camera_id: str, action: str, params: dict[str, Any]) -> None:
        await hub.store.audit("hub", action, camera_id, **params)

    log = CameraLog(write, hub.cameras.states.get)
    log.start()
    stack.push_async_callback(log.close)
    stack.callback(hub.bus.listen(CameraStateChanged, log.on_event))
