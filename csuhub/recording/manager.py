"""Which cameras record, and what happens to each segment they produce.

The manager starts a recorder (from the configured backend) for each camera
that ``CameraRegistry.may_record`` allows, and stops it when the camera goes
offline, is removed or its authorisation expires: the recording state says
why. Each closed segment is hashed (SHA-256) and indexed with the gap before
it, if any, whose reason is the last interruption's (ffmpeg restart, camera
offline, hub down...). Both happen off the event loop in one hand-off: a
hashing thread reads the file and passes the row straight to the store's
thread, whose writer commits the segments that close together (several
cameras at the same instant) in one transaction; the loop wakes once, when
the row is durable. A recorder may hand in a file still in its staging
folder: the same hashing thread places it first, so a segment costs one
thread hand-off, not two.

A segment is ``ok`` only if it holds whole video samples: the file is read
in-process (:mod:`csuhub.recording.mp4info`) in the same pass as its hash,
never by a process per segment. Alarms (disk full, not recording) are states
on an :class:`~csuhub.alarms.AlarmBoard`: raised once, reminded slowly,
cleared when footage is indexed again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub.alarms import AlarmBoard
from csuhub.events import (
    CameraAuthorizationChanged,
    CameraStateChanged,
    GapRecorded,
    RecordingAlert,
    RecordingStateChanged,
    SegmentRecorded,
)
from csuhub.protocols import Recorder, RecordingBackend
from csuhub.recording.layout import STAGING, hour_dir, hour_folder, place_file
from csuhub.recording.mp4info import inspect_segment
from csuhub.recording.reconcile import reconcile_storage
from csuhub.recording.signing import load_or_create
from csuhub.store.records import Gap, NewSegment

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from csuhub.cameras.manager import CameraManager
    from csuhub.config.settings import RecordingSettings
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Indexed:
    """What indexing one file produced (made in the hashing thread)."""

    relative: str
    size: int
    duration: float
    status: str
    segment_id: int
    gap: Gap | None


#: Settles the loop's future from any thread: (result, None) or (None, error).
Settle = Callable[[_Indexed | None, BaseException | None], None]


class RecordingManager:
    def __init__(self, hub: HubServices, cameras: CameraManager) -> None:
        self.hub = hub
        #: which cameras exist, may record, and their drivers (the stream URI)
        self.cameras = cameras
        self.backend: RecordingBackend | None = None
        self.recorders: dict[str, Recorder] = {}
        self.states: dict[str, tuple[str, str]] = {}
        self.pending_gap: dict[str, str] = {}
        self.alarms = AlarmBoard(hub.bus, "recording")
        #: end of each camera's newest indexed segment: the not-recording alert reads
        #: this instead of asking the store for every camera every 30 s
        self.last_end: dict[str, float] = {}
        #: when each recorder was started: a camera that just began recording (at
        #: start-up, or back from offline) is given ``alert_after`` to produce footage
        self.started_at: dict[str, float] = {}
        self._unsub: list[Any] = []
        #: made at each start and shut down (off the loop) at each stop
        self._hasher: ThreadPoolExecutor | None = None
        #: the validated ``recording:`` section, set at start (defaults from the schema)
        self.settings: RecordingSettings | None = None
        self.root: Path = Path()
        #: the root as a string ending in ``/``: the prefix every indexed file has
        self._root_prefix = "/"
        #: each camera's folder under the root, as a string (made once per camera)
        self._camera_dirs: dict[str, str] = {}
        self.reconciliation: dict[str, Any] = {}
        self.signing_key: Ed25519PrivateKey | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self.settings = settings = self.hub.config.settings.recording
        self.root = self.storage_root()
        self._root_prefix = os.path.join(os.fspath(self.root), "")
        self._camera_dirs.clear()
        self._hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="csuhub-hash")
        # the evidence signing key exists from the first start, so its public half
        # can be published (``csuhub keys public``) before any export
        self.signing_key = await asyncio.to_thread(load_or_create, self.hub.data_dir)
        name = settings.backend
        spec = self.hub.registry.recording_backends.get(name)
        if spec is None:
            _LOGGER.warning("no recording backend %r: nothing is recorded", name)
            for camera_id in self.cameras.entries:
                self._set(camera_id, "blocked", f"no recording backend {name!r}")
            return
        self.backend = spec.factory(self.hub, spec.config_schema(dict(settings.options)))
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        # everything missing between the last segment and now was the hub being down
        for camera_id in self.cameras.entries:
            self.pending_gap[camera_id] = "hub down"
        self._unsub.append(self.hub.bus.listen(CameraStateChanged, self._on_camera))
        self._unsub.append(self.hub.bus.listen(CameraAuthorizationChanged, self._on_camera))
        self.reconciliation = await reconcile_storage(self.hub, self)
        for camera_id in list(self.cameras.entries):
            await self.evaluate(camera_id)
        self.hub.supervisor.spawn("recording-watch", self._watch)

    async def stop(self) -> None:
        for undo in self._unsub:
            undo()
        self._unsub.clear()
        await asyncio.gather(
            *(self._stop_recorder(c, "hub stopping") for c in list(self.recorders))
        )
        hasher, self._hasher = self._hasher, None
        if hasher is not None:
            # waiting for a hash in progress must not stall the loop
            await asyncio.to_thread(hasher.shutdown, wait=True)

    def storage_root(self) -> Path:
        config = self.hub.config.settings
        configured = config.recording.storage or config.hub.storage_dir
        if configured:
            path = configured.expanduser()
            if not path.is_absolute() and self.hub.config.source is not None:
                path = self.hub.config.source.parent / path
            return path.resolve()
        return (self.hub.data_dir / "recordings").resolve()

    # -- which cameras record ---------------------------------------------------------

    async def _on_camera(self, event: CameraStateChanged | CameraAuthorizationChanged) -> None:
        await self.evaluate(event.camera_id)

    async def evaluate(self, camera_id: str) -> None:
        if self.backend is None:
            return
        allowed, why = self.cameras.may_record(camera_id)
        recording = camera_id in self.recorders
        if allowed and not recording:
            await self._start_recorder(camera_id)
        elif not allowed and recording:
            await self._stop_recorder(camera_id, why)
            self._set(camera_id, "blocked", why)
        elif not allowed:
            self._set(camera_id, "blocked", why)

    async def _start_recorder(self, camera_id: str) -> None:
        assert self.backend is not None and self.settings is not None
        driver = self.cameras.drivers.get(camera_id)
        if driver is None:
            return
        try:
            source = await driver.stream(
                self.cameras.entries[camera_id].options.get("profile", "main")
            )
        except Exception as err:
            self._set(camera_id, "blocked", f"no stream: {err}")
            return
        recorder = self.backend.recorder(
            camera_id,
            source,
            self,
            self.settings.segment,
            self.settings.audio,
        )
        self.recorders[camera_id] = recorder
        self.started_at[camera_id] = time.time()
        self.hub.supervisor.spawn(f"record:{camera_id}", recorder.run)

    async def _stop_recorder(self, camera_id: str, reason: str) -> None:
        if self.recorders.pop(camera_id, None) is None:
            return
        self.pending_gap[camera_id] = reason or "recording stopped"
        await self.hub.supervisor.cancel(f"record:{camera_id}")

    def _set(self, camera_id: str, state: str, reason: str) -> None:
        if self.states.get(camera_id) == (state, reason):
            return
        self.states[camera_id] = (state, reason)
        self.hub.bus.fire(RecordingStateChanged(camera_id=camera_id, state=state, reason=reason))

    # -- SegmentSink ---------------------------------------------------------------------

    def segment_dir(self, camera_id: str, when: float | None) -> Path:
        if when is None:
            return self.root / camera_id
        return hour_dir(self.root, camera_id, when)

    def recorder_state(self, camera_id: str, state: str, reason: str = "") -> None:
        self._set(camera_id, state, reason)
        if reason.startswith("disk full"):
            # one alarm for the storage, however many recorders retry into it
            message = f"{self.root}: no space left on device"
            if self.alarms.raise_alarm("disk_full", None, message):
                self.hub.bus.fire(RecordingAlert(camera_id=None, kind="disk_full", message=message))

    def interrupted(self, camera_id: str, reason: str) -> None:
        self.pending_gap.setdefault(camera_id, reason)

    async def segment_closed(
        self, camera_id: str, path: Path, start: float, duration: float | None
    ) -> None:
        """A live recorder closed a segment: index it, with the gap before it if any.

        ``path`` may still be in the camera's staging folder: it is then placed
        (:func:`~csuhub.recording.layout.place`) in the hashing thread, first.
        An ``OSError`` placing or reading it reaches the recorder, which leaves
        the file to its recovery."""
        await self.index_segment(
            camera_id,
            path,
            start,
            duration,
            self.pending_gap.get(camera_id, "unknown"),
            consume=True,
        )

    async def index_segment(
        self,
        camera_id: str,
        path: Path,
        start: float,
        duration: float | None,
        gap_reason: str,
        *,
        consume: bool = False,
    ) -> tuple[int, str, float] | None:
        """Index one file: (segment id, status, duration indexed), or None if the
        file vanished.

        ``duration=None`` takes the duration from the media (files no segment
        list reported: recovered at start-up, or cut short by a crash).
        """
        closed_at = time.monotonic()
        loop = asyncio.get_running_loop()
        indexed: asyncio.Future[_Indexed | None] = loop.create_future()
        if self._hasher is None:
            raise RuntimeError("the recording manager is not started")
        # one hand-off: the hashing thread queues the row on the store's thread itself,
        # and only the settler wakes the loop (``run_in_executor`` would wake it a
        # second time, for a result nobody reads: _hash_and_submit never raises)
        self._hasher.submit(
            self._hash_and_submit,
            _settler(loop, indexed),
            camera_id,
            path,
            start,
            duration,
            gap_reason,
        )
        result = await indexed
        if result is None:
            return None
        gap, segment_id, size, status = result.gap, result.segment_id, result.size, result.status
        end = start + result.duration
        if consume:
            # the interruption's reason explains the next segment's gap, and no later one
            self.pending_gap.pop(camera_id, None)
        if gap is not None:
            self.hub.bus.fire(
                GapRecorded(camera_id=camera_id, start=gap.start, end=gap.end, reason=gap.reason)
            )
        if status == "ok":
            self.alarms.clear("not_recording", camera_id, f"{camera_id} records again")
            # the segment that filled the disk is ok too: cleared only with room for another
            if self.alarms.is_active("disk_full") and (
                await loop.run_in_executor(self._hasher, _free_bytes, path.parent) >= size
            ):
                self.alarms.clear("disk_full", None, "segments are written again")
            self.last_end[camera_id] = max(end, self.last_end.get(camera_id, end))
        self.hub.bus.fire(
            SegmentRecorded(
                camera_id=camera_id,
                segment_id=segment_id,
                start=start,
                end=end,
                size=size,
                path=result.relative,
                latency=time.monotonic() - closed_at,
            )
        )
        return segment_id, status, result.duration

    def _hash_and_submit(
        self,
        settle: Settle,
        camera_id: str,
        path: Path,
        start: float,
        duration: float | None,
        gap_reason: str,
    ) -> None:
        """In a hashing thread: place a staged file, hash and read it, then hand
        the row to the store's writer; ``settle`` wakes the loop once the row is
        durable."""
        # paths as strings: ``Path`` operations cost more than the link (tens of us)
        file = os.fspath(path)
        try:
            try:
                camera_dir = self._camera_dirs.get(camera_id)
                if camera_dir is None:
                    camera_dir = self._camera_dirs[camera_id] = os.fspath(self.root / camera_id)
                if os.path.dirname(file) == f"{camera_dir}/{STAGING}":
                    # a recorder's finished file: filed under its start here, in the
                    # same hand-off as its hash (a thread of its own cost a loop wake)
                    file = place_file(file, hour_folder(camera_dir, start), start)
                size, digest, info = inspect_segment(file)
            except FileNotFoundError:
                _LOGGER.warning("camera %s: segment %s vanished before indexing", camera_id, file)
                settle(None, None)
                return
            root = self._root_prefix
            if not file.startswith(root):
                raise ValueError(f"{file} is not under the storage root {self.root}")
            relative = file[len(root) :]
            if duration is None:
                duration = info.duration if info is not None else 0.0
            # fail closed: no whole video sample, or a file we cannot read, is not footage
            status = "ok" if duration > 0 and info is not None and info.playable else "damaged"
            if status == "damaged":
                _LOGGER.warning(
                    "camera %s: %s holds no playable video (%s); indexed as damaged",
                    camera_id,
                    relative,
                    "unreadable" if info is None else f"{info.video_samples} video samples",
                )
            stored = self.hub.store.submit_segment(
                NewSegment(
                    camera_id,
                    start,
                    start + duration,
                    size,
                    relative,
                    digest,
                    status,
                    gap_reason,
                )
            )
        except BaseException as err:
            settle(None, err)
            return

        indexed_duration = duration

        def done(future: Future[tuple[int, Gap | None]]) -> None:
            error = future.exception()
            if error is not None:
                settle(None, error)
                return
            segment_id, gap = future.result()
            settle(_Indexed(relative, size, indexed_duration, status, segment_id, gap), None)

        stored.add_done_callback(done)

    # -- alerts --------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Alert when a camera that may record has not for ``alert_after``."""
        alert_after = self.hub.config.settings.recording.alert_after
        while True:
            await asyncio.sleep(min(30.0, alert_after / 4))
            now = time.time()
            for camera_id in list(self.recorders):
                last = self.last_end.get(camera_id)
                if last is None:  # nothing indexed since start-up: the store knows
                    last = await self.hub.store.last_segment_end(camera_id)
                    if last is not None:
                        self.last_end[camera_id] = last
                since = max(last or 0.0, self.started_at.get(camera_id, now))
                if now - since > alert_after:
                    state, reason = self.states.get(camera_id, ("unknown", ""))
                    message = (
                        f"no footage for {_human(alert_after)} "
                        f"(recorder {state}{': ' + reason if reason else ''})"
                    )
                    if self.alarms.raise_alarm("not_recording", camera_id, message):
                        self.hub.bus.fire(
                            RecordingAlert(
                                camera_id=camera_id, kind="not_recording", message=message
                            )
                        )
            for alarm in self.alarms.active():  # a camera that may no longer record
                if alarm.kind == "not_recording" and alarm.camera_id not in self.recorders:
                    self.alarms.clear("not_recording", alarm.camera_id, "recording stopped")


def _human(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _settler(loop: asyncio.AbstractEventLoop, target: asyncio.Future[_Indexed | None]) -> Settle:
    """A thread-safe way to settle ``target`` once (a closed loop or a cancelled
    waiter is ignored: the row is durable either way, and the start-up
    reconciliation knows it)."""

    def on_loop(result: _Indexed | None, error: BaseException | None) -> None:
        if target.done():
            return
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(result)

    def settle(result: _Indexed | None, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(on_loop, result, error)
        except RuntimeError:  # the loop is closed
            pass

    return settle
