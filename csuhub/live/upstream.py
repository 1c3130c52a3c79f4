"""One camera stream read once by ffmpeg and handed to every viewer of it.

Why one process per (camera, stream) and not per viewer: a camera serves few
RTSP sessions (often 4 to 10) and every session costs it CPU; the hub reads
the stream once and fans the fragments out, so sixty-four kiosk tiles cost
the camera one session.

The upstream keeps what a new viewer needs to start at once: the init
segment and the fragments since the latest keyframe (the current GOP), so
a viewer's first picture is there within one GOP at most, usually at once.

A camera that stops (ffmpeg exits, or sends nothing for ``stall``
seconds) is announced ``offline`` to its viewers and retried with
exponential backoff; when it is back, viewers get ``online`` and the init
segment again. A camera with privacy masks in force is transcoded through
the mask, never copied (``csuhub.masks.policy.playback_plan``: no lift
unmasks live view); the masks are read again every ``mask_check`` seconds
and a change restarts the stream in the right mode. A camera whose
prefectoral authorisation is missing or expired is not read at all
(``LiveManager.refusal``), and a stream whose authorisation expires is
stopped at the next check (``offline`` with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub.backoff import Backoff
from csuhub.live.command import (
    copy_args,
    ffmpeg_binary,
    input_args,
    masked_args,
    probe_size,
)
from csuhub.live.fmp4 import CodecInfo, Fmp4Error, Fragment, Segmenter
from csuhub.live.redact import redact, secrets_of
from csuhub.live.wsframe import binary_frame
from csuhub.masks.apply import write_mask
from csuhub.masks.policy import playback_plan
from csuhub.web.cache import current_version

if TYPE_CHECKING:
    from csuhub.live.manager import LiveManager
    from csuhub.live.viewer import Viewer
    from csuhub.masks.model import Mask

_LOGGER = logging.getLogger(__name__)

#: bytes asked of the pipe per read
CHUNK = 256 * 1024
#: upstream instances, numbered: each one's supervisor task has its own name
_SERIAL = itertools.count(1)
#: a GOP cached for new viewers is cut beyond this (they wait for the next keyframe)
MAX_GOP_BYTES = 16 * 1024 * 1024


class Upstream:
    def __init__(self, manager: LiveManager, camera_id: str, stream: str) -> None:
        self.manager = manager
        self.hub = manager.hub
        self.camera_id = camera_id
        self.stream = stream
        self.serial = next(_SERIAL)
        self.viewers: set[Viewer] = set()
        #: starting (never online yet), online, offline
        self.state = "starting"
        self.reason = ""
        self.info: CodecInfo | None = None
        self.init: bytes | None = None
        self.gop: list[Fragment] = []
        self._gop_bytes = 0
        self.masked = False
        self._masks: tuple[Mask, ...] | None = None
        self.runs = 0
        self.fragments = 0
        self.bytes_in = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._last_data = time.monotonic()
        self._stderr: deque[str] = deque(maxlen=20)
        #: the stream URL's password: cut from every line ffmpeg says (csuhub.live.redact)
        self._secrets: tuple[str, ...] = ()
        self._restart: str | None = None
        #: monotonic time the stream last went online (None: not online)
        self.online_at: float | None = None

    @property
    def name(self) -> str:
        return f"live:{self.camera_id}:{self.stream}#{self.serial}"

    # -- viewers -----------------------------------------------------------------------

    def attach(self, viewer: Viewer) -> None:
        self.viewers.add(viewer)
        if self.state == "online" and self.init is not None:
            viewer.start([self.init_message()], self.init, self.gop)
        elif self.state == "offline":
            viewer.control({"type": "offline", "reason": self.reason})

    def detach(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def init_message(self) -> dict[str, Any]:
        info = self.info
        assert info is not None
        message: dict[str, Any] = {
            "type": "init",
            "mime": info.mime,
            "codec": info.codec,
            "width": info.width,
            "height": info.height,
            "masked": self.masked,
            "camera": self.camera_id,
            "stream": self.stream,
        }
        if info.h265:
            message["h265"] = True
        return message

    # -- the run loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Read the camera until cancelled, retrying with backoff when it drops."""
        settings = self.manager.settings
        backoff = Backoff(settings.retry_initial, settings.retry_max)
        while True:
            self.runs += 1
            try:
                reason = await self._run_once()
            except (OSError, ValueError) as err:  # no stream, no ffmpeg, a bad URL...
                reason = str(err) or type(err).__name__
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a driver's own failure: still only this camera's
                reason = redact(f"{type(err).__name__}: {err}", self._secrets)
                _LOGGER.warning("live %s: %s", self.name, reason)
            if self.online_at is not None:
                backoff.reset()
            restart, self._restart = self._restart, None
            self._go_offline(restart or reason)
            if restart is None:
                await asyncio.sleep(backoff.next())

    async def _run_once(self) -> str:
        driver = self.hub.cameras.drivers.get(self.camera_id)
        if driver is None:
            return "the camera is not adopted"
        refused = self.manager.refusal(self.camera_id)
        if refused is not None:
            return refused
        settings = self.manager.settings
        source = await driver.stream(self.stream)
        self._secrets = secrets_of(str(source.url))
        inputs = input_args(source, settings.rtsp_timeout, settings.analyze)
        masks = await self._current_masks()
        with tempfile.TemporaryDirectory(prefix="csuhub-live-") as folder:
            if masks:
                width, height = source.width, source.height
                if not (width and height):
                    width, height = await probe_size(
                        self.hub.processes, source, settings.rtsp_timeout
                    )
                mask = await write_mask(Path(folder), masks, width, height)
                args = masked_args(ffmpeg_binary(), inputs, mask, width, height, settings.fragment)
            else:
                args = copy_args(ffmpeg_binary(), inputs, settings.fragment)
            self._masks = masks
            self.masked = bool(masks)
            proc = await self.hub.processes.spawn(
                args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            self.proc = proc
            self._stderr.clear()
            errors = asyncio.create_task(self._read_stderr(proc))
            watchdog = asyncio.create_task(self._watchdog(proc))
            try:
                return await self._read(proc)
            finally:
                watchdog.cancel()
                await self.hub.processes.terminate(proc, discard_output=True)
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(errors, 2)
                self.proc = None

    async def _current_masks(self) -> tuple[Mask, ...]:
        """The masks live view paints: all in force (fail closed: an error here
        stops the stream, it does not show it unmasked)."""
        plan = await playback_plan(self.hub, self.camera_id)
        return tuple(plan.apply)

    async def _read(self, proc: asyncio.subprocess.Process) -> str:
        assert proc.stdout is not None
        segmenter = Segmenter()
        read = proc.stdout.read
        self._last_data = time.monotonic()
        while True:
            chunk = await read(CHUNK)
            if not chunk:
                break
            self._last_data = time.monotonic()
            self.bytes_in += len(chunk)
            try:
                items = segmenter.feed(chunk)
            except Fmp4Error as err:
                return f"unreadable stream from ffmpeg: {err}"
            for item in items:
                if item[0] == "fragment":
                    self._fragment(item[1])  # type: ignore[arg-type]
                else:
                    self._online(item[1], item[2])  # type: ignore[arg-type,misc]
        code = await proc.wait()
        if self._restart is not None:
            return self._restart
        if time.monotonic() - self._last_data >= self.manager.settings.stall:
            return f"no video for {self.manager.settings.stall:g} s"
        said = self._stderr[-1] if self._stderr else ""
        return f"ffmpeg exited ({code}){': ' + said if said else ''}"

    def _online(self, init: bytes, info: CodecInfo) -> None:
        announce = self.state == "offline"
        self.init, self.info = init, info
        self.manager.h265[(self.camera_id, self.stream)] = info.h265
        self.gop, self._gop_bytes = [], 0
        self.state, self.reason = "online", ""
        self.online_at = time.monotonic()
        messages = [{"type": "online"}] if announce else []
        messages.append(self.init_message())
        for viewer in list(self.viewers):
            viewer.start(messages, init, [])
        _LOGGER.info("live %s: online (%s, masked=%s)", self.name, info.codec, self.masked)

    def _fragment(self, fragment: Fragment) -> None:
        self.fragments += 1
        if fragment.keyframe:
            self.gop, self._gop_bytes = [fragment], len(fragment.data)
        elif self.gop and self._gop_bytes + len(fragment.data) <= MAX_GOP_BYTES:
            self.gop.append(fragment)
            self._gop_bytes += len(fragment.data)
        else:
            self.gop, self._gop_bytes = [], 0  # too long a GOP to cache: wait for the next
        if not self.viewers:
            return
        frame = binary_frame(fragment.data)  # once for all: the viewers that keep up
        for viewer in self.viewers:
            viewer.offer(fragment, frame)

    def _go_offline(self, reason: str) -> None:
        self.online_at = None
        self.init, self.info = None, None
        self.gop, self._gop_bytes = [], 0
        if self.state == "offline" and self.reason == redact(reason, self._secrets)[:300]:
            return
        self.state, self.reason = "offline", redact(reason, self._secrets)[:300]
        _LOGGER.info("live %s: offline (%s)", self.name, self.reason)
        message = {"type": "offline", "reason": self.reason}
        for viewer in list(self.viewers):
            viewer.stop_media(message)

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").strip()
            if text and "Non-monotonous DTS" not in text:
                self._stderr.append(redact(text, self._secrets)[:300])

    async def _watchdog(self, proc: asyncio.subprocess.Process) -> None:
        """Ends a run that sends nothing for ``stall`` seconds (a hung camera:
        ffmpeg's own socket timeout does not cover every hang), and one whose
        masks changed or whose authorisation lapsed.

        Why two mask cadences: masks are written by the web API and the
        store, which announce nothing on the bus; reading them costs queries.
        Every ``mask_check`` seconds they are read whatever happens; every
        ``mask_poll`` seconds, for a stream someone watches, only if the
        database changed since the last read (one shared ``PRAGMA
        data_version``), so a mask just drawn hides the area within a second
        or so, not five."""
        settings = self.manager.settings
        next_mask_check = time.monotonic() + settings.mask_check
        seen = await current_version(self.hub.store)
        tick = asyncio.Event()
        leave = self.manager.watch.join(tick)  # with the other upstreams: one store probe
        try:
            while proc.returncode is None:
                await tick.wait()
                tick.clear()
                now = time.monotonic()
                if now - self._last_data >= settings.stall:
                    _LOGGER.warning("live %s: no data for %.0f s", self.name, now - self._last_data)
                    await self.hub.processes.terminate(proc)
                    return
                due = now >= next_mask_check
                if not due and self.viewers:
                    version = await current_version(self.hub.store)
                    due = version is not None and version != seen
                if not due:
                    continue
                next_mask_check = now + settings.mask_check
                seen = await current_version(self.hub.store)
                why = await self._must_restart()
                if why is not None:
                    self._restart = why
                    await self.hub.processes.terminate(proc)
                    return
        finally:
            leave()

    async def _must_restart(self) -> str | None:
        """Why the run must end now: the authorisation expired while streaming,
        or the masks changed (or cannot be read: fail closed, no picture)."""
        refused = self.manager.refusal(self.camera_id)
        if refused is not None:
            return refused
        try:
            masks = await self._current_masks()
        except Exception as err:
            return redact(f"the privacy masks cannot be read: {err}", self._secrets)
        return "the privacy masks changed" if masks != self._masks else None

    def stats(self) -> dict[str, Any]:
        return {
            "camera": self.camera_id,
            "stream": self.stream,
            "state": self.state,
            "reason": self.reason,
            "codec": self.info.codec if self.info else None,
            "masked": self.masked,
            "viewers": len(self.viewers),
            "runs": self.runs,
            "fragments": self.fragments,
            "bytes_in": self.bytes_in,
            "pid": self.proc.pid if self.proc is not None else None,
        }
