"""Which cameras record, and what happens to each segment they produce.

The manager starts a recorder (from the configured backend) for each camera
that ``CameraRegistry.may_record`` allows, and stops it when the camera goes
offline, is removed or its authorisation expires: the recording state says
why. Each closed segment is hashed (SHA-256) and indexed with the gap before
it, if any, whose reason is the last interruption's (ffmpeg restart, camera
offline, hub down...), off the event loop by the
:class:`~csuhub.recording.indexer.SegmentIndexer` in one hand-off; the loop
wakes once, when the row is durable, and this manager does the bookkeeping
and fires the events in that wake's callback (no task step:
``submit_segment`` is the callback form a recorder reading its list in a
protocol uses).

A segment is ``ok`` only if it holds whole video samples: the file is read
in-process (:mod:`csuhub.recording.mp4info`) in the same pass as its hash,
never by a process per segment. Alarms (disk full, not recording) are states
on an :class:`~csuhub.alarms.AlarmBoard`: raised once, reminded slowly,
cleared when footage is indexed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
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
from csuhub.recording.indexer import Indexed, SegmentIndexer
from csuhub.recording.layout import hour_dir
from csuhub.recording.reconcile import reconcile_storage
from csuhub.recording.signing import load_or_create

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from csuhub.cameras.manager import CameraManager
    from csuhub.config.settings import RecordingSettings
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)


#: What the caller of ``_submit`` hears, on the loop: (outcome, None) or (None, error).
Reply = Callable[[tuple[int, str, float] | None, BaseException | None], None]


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
        self._indexer: SegmentIndexer | None = None
        #: the running check for room after a full disk (referenced: the loop keeps
        #: only weak references to tasks)
        self._room_check: asyncio.Task[None] | None = None
        #: the validated ``recording:`` section, set at start (defaults from the schema)
        self.settings: RecordingSettings | None = None
        self.root: Path = Path()
        self.reconciliation: dict[str, Any] = {}
        self.signing_key: Ed25519PrivateKey | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self.settings = settings = self.hub.config.settings.recording
        self.root = self.storage_root()
        self._indexer = SegmentIndexer(self.hub, self.root)
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
        check, self._room_check = self._room_check, None
        if check is not None:
            check.cancel()
            await asyncio.gather(check, return_exceptions=True)
        indexer, self._indexer = self._indexer, None
        if indexer is not None:
            await indexer.close()

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

    def submit_segment(
        self,
        camera_id: str,
        path: str | Path,
        start: float,
        duration: float | None,
        done: Callable[[BaseException | None], None],
    ) -> None:
        """:meth:`segment_closed` without a coroutine: returns at once, and
        ``done(None)`` or ``done(error)`` runs on the loop once the segment is
        indexed (or vanished) or failed. A recorder that reads its segment list
        in a protocol callback indexes with no task step at all: on a loaded
        2-core machine each loop iteration a segment costs is about 0.1 ms of a
        cold interpreter (issue 11, B1)."""
        self._submit(
            camera_id,
            path,
            start,
            duration,
            self.pending_gap.get(camera_id, "unknown"),
            True,
            lambda _outcome, error: done(error),
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
        indexed: asyncio.Future[tuple[int, str, float] | None] = (
            asyncio.get_running_loop().create_future()
        )

        def reply(outcome: tuple[int, str, float] | None, error: BaseException | None) -> None:
            if indexed.done():  # the waiter was cancelled: the row is durable anyway
                return
            if error is not None:
                indexed.set_exception(error)
            else:
                indexed.set_result(outcome)

        self._submit(camera_id, path, start, duration, gap_reason, consume, reply)
        return await indexed

    def _submit(
        self,
        camera_id: str,
        path: str | Path,
        start: float,
        duration: float | None,
        gap_reason: str,
        consume: bool,
        reply: Reply,
    ) -> None:
        """Hand one file to a hashing thread; ``reply`` runs on the loop with the
        outcome, after the bookkeeping and the events (:meth:`_indexed`)."""
        indexer = self._indexer
        if indexer is None:
            raise RuntimeError("the recording manager is not started")
        closed_at = time.monotonic()

        def on_loop(result: Indexed | None, error: BaseException | None) -> None:
            if error is not None:
                reply(None, error)
                return
            outcome = None
            if result is not None:
                try:
                    outcome = self._indexed(camera_id, start, closed_at, consume, result)
                except Exception as err:  # the row is durable; the caller hears why
                    reply(None, err)
                    return
            reply(outcome, None)

        indexer.submit(on_loop, camera_id, path, start, duration, gap_reason)

    def _indexed(
        self,
        camera_id: str,
        start: float,
        closed_at: float,
        consume: bool,
        result: Indexed,
    ) -> tuple[int, str, float]:
        """On the loop, once the row is durable: the pending gap, the alarms, the
        events. Synchronous, so the settler's callback does it in the same loop
        iteration (no task wakes for it)."""
        end = start + result.duration
        if consume:
            # the interruption's reason explains the next segment's gap, and no later one
            self.pending_gap.pop(camera_id, None)
        gap = result.gap
        if gap is not None:
            self.hub.bus.fire(
                GapRecorded(camera_id=camera_id, start=gap.start, end=gap.end, reason=gap.reason)
            )
        if result.status == "ok":
            self.alarms.clear("not_recording", camera_id, f"{camera_id} records again")
            if self.alarms.is_active("disk_full"):
                self._check_room(result.relative, result.size)
            self.last_end[camera_id] = max(end, self.last_end.get(camera_id, end))
        self.hub.bus.fire(
            SegmentRecorded(
                camera_id=camera_id,
                segment_id=result.segment_id,
                start=start,
                end=end,
                size=result.size,
                path=result.relative,
                latency=time.monotonic() - closed_at,
            )
        )
        return result.segment_id, result.status, result.duration

    def _check_room(self, relative: str, size: int) -> None:
        """Clear ``disk_full`` once there is room for another segment like this one
        (the segment that filled the disk is ok too). Asks the disk off the loop,
        one check at a time: the next segment asks again."""
        if self._room_check is not None and not self._room_check.done():
            return

        async def check() -> None:
            indexer = self._indexer
            if indexer is None:
                return
            try:
                free = await indexer.free_bytes(indexer.folder_of(relative))
            except (OSError, RuntimeError) as err:  # RuntimeError: the pool shut down
                _LOGGER.warning("could not read the free space for %s: %s", relative, err)
                return
            if free >= size:
                self.alarms.clear("disk_full", None, "segments are written again")

        self._room_check = asyncio.get_running_loop().create_task(check())

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
