"""The live upstreams of a hub: started by the first viewer of a camera
stream, stopped a grace period after the last one leaves.

Why a grace period: a kiosk reloading its page, or a wall screen switching
layout and back, would otherwise stop and restart the camera's RTSP session
(and wait a GOP for the first picture) every time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csuhub.live.gate import LiveGate
from csuhub.live.metronome import Metronome
from csuhub.live.upstream import Upstream
from csuhub.live.viewer import Limits, Viewer
from csuhub.walls.view import HEVC, known_codec

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)

STREAMS = ("sub", "main")


@dataclass
class LiveSettings:
    """Not in the site file yet: these defaults suit a CSU's LAN; tests and
    benchmarks set them on ``hub.live.settings``."""

    #: seconds an upstream outlives its last viewer
    grace: float = 10.0
    #: seconds without a byte from ffmpeg before the camera counts as dropped
    stall: float = 10.0
    #: ffmpeg's RTSP socket timeout (seconds)
    rtsp_timeout: float = 5.0
    #: seconds ffmpeg studies an RTSP stream before its first fragment
    analyze: float = 0.5
    #: longest fragment (seconds) when the GOP is longer: the latency it adds
    fragment: float = 0.1
    #: retries of a dropped camera: first wait and cap (seconds)
    retry_initial: float = 1.0
    retry_max: float = 30.0
    #: seconds between two reads of a streaming camera's privacy masks
    mask_check: float = 5.0
    #: seconds between two looks, for a watched stream, at whether the
    #: database changed (then the masks are read at once: a new mask hides
    #: its area within about this long; csuhub.live.upstream)
    mask_poll: float = 1.0
    #: a viewer socket's kernel send buffer (bytes; Linux doubles it): fixed, so
    #: that the kernel cannot hide seconds of a stuck viewer's backlog from
    #: the hub (autotuned, it grows to 4 MB: 16 s of a 2 Mbit/s stream)
    send_buffer: int = 256 * 1024
    #: seconds between two checks of an open socket's credential and scope
    #: (also checked at each wall.changed)
    recheck: float = 10.0
    #: open live sockets per principal; a wall account: per_tile times its
    #: walls' tiles if more; and in all (csuhub.live.gate)
    per_principal: int = 16
    per_tile: int = 4
    max_sockets: int = 256
    #: how far a viewer may fall behind
    limits: Limits = field(default_factory=Limits)


class LiveManager:
    """``hub.live``: the upstreams, and the viewers attached to them."""

    def __init__(self, hub: HubServices, settings: LiveSettings | None = None) -> None:
        self.hub = hub
        self.settings = settings or LiveSettings()
        self.upstreams: dict[tuple[str, str], Upstream] = {}
        self._stops: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self.closed = False
        self.gate = LiveGate(self)
        #: (camera, stream) -> whether its stream was H.265 when last read
        #: (kept after its upstream stops: the wall JSON asks before a viewer)
        self.h265: dict[tuple[str, str], bool] = {}
        #: the upstreams' watchdogs (stall, masks) tick together, and so do the
        #: sockets' credential checks: their store probes are shared
        self.watch = Metronome(self._watch_period)
        self.rechecks = Metronome(lambda: self.settings.recheck)
        #: credential rechecks under way, by (kind, key, address): the sockets of
        #: one credential woken by the same tick share one (csuhub.web.live)
        self.rechecking: dict[tuple[str, str, str | None], asyncio.Future[Principal | None]] = {}

    def _watch_period(self) -> float:
        settings = self.settings
        return min(1.0, settings.stall / 4, settings.mask_check, settings.mask_poll)

    def refusal(self, camera_id: str) -> str | None:
        """Why the law forbids showing the camera now (None: it may be shown):
        ``CameraManager.may_film``, the authorisation half of what recording
        obeys (a camera without a valid prefectoral authorisation may not film
        at all)."""
        return self.hub.cameras.may_film(camera_id)

    def tile_problem(self, camera_id: str, stream: str) -> str | None:
        """Why a wall tile of this stream may not play (``csuhub.walls.view``
        asks): ``"h265"`` when the stream is H.265, which most browsers cannot
        play, known from a running upstream's init segment, else from the
        last one's, else from the codec the camera's driver describes."""
        key = (camera_id, stream)
        upstream = self.upstreams.get(key)
        if upstream is not None and upstream.info is not None:
            h265 = upstream.info.h265
        elif key in self.h265:
            h265 = self.h265[key]
        else:
            h265 = known_codec(self.hub, camera_id, stream) in HEVC
        return "h265" if h265 else None

    def attach(self, camera_id: str, stream: str, viewer: Viewer) -> Upstream:
        """Attach ``viewer`` to the camera stream's upstream, starting it if needed."""
        if self.closed:
            raise RuntimeError("the hub is stopping")
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {', '.join(STREAMS)}")
        key = (camera_id, stream)
        timer = self._stops.pop(key, None)
        if timer is not None:
            timer.cancel()
        upstream = self.upstreams.get(key)
        if upstream is None:
            # each upstream's task has its own name: an expired one being
            # cancelled may still be running while its successor starts; and
            # it is kept only once its task runs (a failed spawn leaves none)
            upstream = Upstream(self, camera_id, stream)
            self.hub.supervisor.spawn(upstream.name, upstream.run)
            self.upstreams[key] = upstream
        upstream.attach(viewer)
        return upstream

    def detach(self, upstream: Upstream, viewer: Viewer) -> None:
        """The viewer left; the upstream stops ``grace`` seconds after its last."""
        upstream.detach(viewer)
        viewer.close()
        key = (upstream.camera_id, upstream.stream)
        if upstream.viewers or self.upstreams.get(key) is not upstream or key in self._stops:
            return
        loop = asyncio.get_running_loop()
        self._stops[key] = loop.call_later(self.settings.grace, self._expire, key)

    def _expire(self, key: tuple[str, str]) -> None:
        self._stops.pop(key, None)
        upstream = self.upstreams.get(key)
        if upstream is None or upstream.viewers:
            return
        del self.upstreams[key]
        task = asyncio.get_running_loop().create_task(self._stop(upstream))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop(self, upstream: Upstream) -> None:
        _LOGGER.info("live %s: no viewer for %gs; stopping", upstream.name, self.settings.grace)
        await self.hub.supervisor.cancel(upstream.name)

    def close_viewers(self, message: dict[str, Any] | None = None) -> None:
        """Tell every viewer the hub is going (their sockets close)."""
        for upstream in self.upstreams.values():
            for viewer in list(upstream.viewers):
                if message is not None:
                    viewer.control(message)
                viewer.closing = True
                viewer.kicked.set()

    async def stop(self) -> None:
        self.closed = True
        self.close_viewers()
        for timer in self._stops.values():
            timer.cancel()
        self._stops.clear()
        upstreams = list(self.upstreams.values())
        self.upstreams.clear()
        # together: each waits for its ffmpeg to exit
        await asyncio.gather(*(self.hub.supervisor.cancel(u.name) for u in upstreams))
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def stats(self) -> list[dict[str, Any]]:
        return [
            {**upstream.stats(), "viewer_stats": [v.stats() for v in upstream.viewers]}
            for upstream in self.upstreams.values()
        ]
