"""The contracts of the long-lived objects that spec factories build.

These are ``typing.Protocol`` classes: a plugin does not inherit from anything
of ours, it just has these methods, and ``isinstance`` works at run time
(``runtime_checkable``) so the hub can reject a factory that returned the wrong
thing with a clear message instead of failing later.

Every ``start`` returns nothing and every long-lived object has ``stop``; the
hub calls them in order and always calls ``stop`` for what it started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, kw_only=True)
class DiscoveredCamera:
    """What a discovery source reports. All of it came from the network: untrusted."""

    ref: str
    address: str
    source: str
    name: str | None = None
    driver: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class StreamSource:
    """Where a recorder reads a camera's stream from.

    ``url`` is passed to ffmpeg as a single argument after ``-i``;
    ``input_options`` are options the *driver* (not the device) chooses.
    """

    url: str
    input_options: dict[str, str] = field(default_factory=dict)
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


class PtzUnsupported(Exception):
    """The camera cannot do this PTZ operation at all (no PTZ, no PTZ profile):
    a fact about the camera, answered 409, not a failure of it (502)."""


@runtime_checkable
class DiscoverySource(Protocol):
    """Yields cameras as they answer; never waits a fixed sleep before reporting."""

    def scan(self, timeout: float) -> AsyncIterator[DiscoveredCamera]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class CameraDriver(Protocol):
    """One camera, driven by one driver instance.

    A failing ``connect``/``check_health`` backs the health checks off; an
    exception carrying ``retry_after`` (seconds) marks a transient refusal (busy,
    503) and is retried then instead.
    """

    async def connect(self) -> None: ...

    async def describe(self) -> dict[str, Any]: ...

    async def stream(self, profile: str = "main") -> StreamSource: ...

    async def check_health(self) -> bool: ...

    async def close(self) -> None: ...


@runtime_checkable
class PtzDriver(Protocol):
    """A camera driver that can move its camera; ``csuhub.cameras.ptz`` drives it.

    Values arrive checked: finite, pan/tilt/zoom velocities and translations in
    [-1, 1], absolute zoom in [0, 1]. ``ptz_move`` starts a continuous move and
    returns: the hub, not the driver, schedules its stop (after the request's
    duration, or ``ptz_deadman`` seconds, an optional attribute). Optional
    methods: ``ptz_relative``, ``ptz_status``, ``ptz_set_preset(name, token)``
    (returns the token), ``ptz_remove_preset(token)``. Raise ``PtzUnsupported``
    for what the camera cannot do.
    """

    async def ptz_move(self, pan: float, tilt: float, zoom: float = 0.0) -> None: ...

    async def ptz_stop(self) -> None: ...

    async def ptz_absolute(self, pan: float, tilt: float, zoom: float = 0.0) -> None: ...

    async def ptz_home(self) -> None: ...

    async def ptz_presets(self) -> list[dict[str, str]]: ...

    async def ptz_goto_preset(self, preset: str) -> None: ...


class SegmentSink(Protocol):
    """What a recorder reports to (the hub's recording manager implements it)."""

    async def segment_closed(
        self, camera_id: str, path: Any, start: float, duration: float | None
    ) -> None:
        """``duration=None``: not known (a file cut short); read from the file itself.
        ``path`` is the placed file, or one still in the staging folder, which the
        hub then places (``place``) in the thread that hashes it."""

    def submit_segment(
        self,
        camera_id: str,
        path: Any,
        start: float,
        duration: float | None,
        done: Callable[[BaseException | None], None],
    ) -> None:
        """``segment_closed`` without a coroutine, for a recorder that reads its
        segment list in a protocol callback: returns at once; ``done(None)`` runs
        on the loop once the segment is indexed (or the file vanished),
        ``done(error)`` if it could not be (an ``OSError``: placing or reading it
        failed, the file is left to the recorder's recovery)."""

    def recorder_state(self, camera_id: str, state: str, reason: str = "") -> None: ...

    def interrupted(self, camera_id: str, reason: str) -> None: ...

    def segment_dir(self, camera_id: str, when: float) -> Any: ...


@runtime_checkable
class Recorder(Protocol):
    """Records one camera until cancelled; restarts and watchdogs are its business."""

    async def run(self) -> None: ...


@runtime_checkable
class RecordingBackend(Protocol):
    """Makes recorders; ``factory(hub, options)`` builds the backend once."""

    def recorder(
        self,
        camera_id: str,
        source: StreamSource,
        sink: SegmentSink,
        segment_seconds: float,
        audio: bool,
    ) -> Recorder: ...


@dataclass(frozen=True, slots=True)
class Expiry:
    """A policy's verdict: the camera's footage that ended by ``before`` may go.

    Policies only ever reach unheld footage; the sweeper enforces it whatever a
    policy returns. ``policy`` names the line of the destruction register.
    """

    camera_id: str
    before: float
    policy: str
    reason: str = ""
    #: the sweeper clamps every verdict to the camera's authorised minimum retention;
    #: only a policy that must free space for recording to go on (storage_pressure
    #: under its critical threshold) may say True, and it raises an alarm first
    below_minimum: bool = False


@runtime_checkable
class RetentionPolicy(Protocol):
    """``factory(hub, options)``; ``plan`` is called once per sweep, on the loop.

    ``sweep`` is a ``csuhub.retention.SweepContext``: the time, each camera's
    retention and authorised minimum, the legal cap, disk usage, the store, and
    ``alarm()``. A policy may also place or release holds there (incident
    preservation does). It returns what may expire; it never deletes.
    """

    async def plan(self, sweep: Any) -> list[Expiry]: ...


@runtime_checkable
class CallLine(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...
