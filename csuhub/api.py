"""The public plugin API: the one module a csuhub plugin imports from.

Everything else under ``csuhub`` is internal: modules move (issue 11 took the
hub, the store and the CLI apart) and a plugin reaching into them breaks with
them. What is named here stays, or is deprecated first, like pytest's public
API or ``datasette.hookimpl``. ``tests/test_meta.py`` fails when anything
under ``plugins/`` or ``examples/`` imports another ``csuhub`` module (tests of
plugins may also import ``csuhub.testing``, the test kit), and when a name
exported here is not documented in ``docs/hooks.md``.

Most names are re-exported from where they live; the exception is the narrow
store facade for retention policies (:class:`PolicyStore`), which exists so a
policy can place and release preservation holds without the store's internals
and can never touch a judicial requisition's legal hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from csuhub import __version__ as _version
from csuhub.backoff import Backoff, SteppedBackoff
from csuhub.config import validators as cv
from csuhub.events import (
    AlarmCleared,
    AlarmRaised,
    CameraAuthorizationChanged,
    CameraDiscovered,
    CameraRetryScheduled,
    CameraStateChanged,
    ComponentFailed,
    ComponentStarted,
    ConfigReloaded,
    ConfigReloadFailed,
    Event,
    GapRecorded,
    HubStarted,
    HubStarting,
    HubStopping,
    IncidentCameraLinked,
    IncidentClosed,
    IncidentOpened,
    IncidentUpdated,
    PluginFailed,
    RecordingAlert,
    RecordingStateChanged,
    RequisitionChanged,
    RetentionAlert,
    RetentionSwept,
    SegmentRecorded,
    TaskCrashed,
    WallChanged,
)
from csuhub.hookspecs import hookimpl
from csuhub.incidents.calls import CallDesk, CallRefused, CallReport, CallState, HttpCallLine
from csuhub.protocols import (
    CallLine,
    CameraDriver,
    DiscoveredCamera,
    DiscoverySource,
    Expiry,
    PtzDriver,
    PtzUnsupported,
    Recorder,
    RecordingBackend,
    RetentionPolicy,
    SegmentSink,
    StreamSource,
)
from csuhub.recording.layout import new_run_id, place, staged_key, staging_dir
from csuhub.recording.reconcile import place_unlisted
from csuhub.refs import (
    IncidentRef,
    IncidentStatus,
    LinkedCamera,
    Location,
    Priority,
    ScreenRef,
    WallRef,
)
from csuhub.retention.context import CameraRetention, SegmentRef, SweepContext
from csuhub.security.permissions import PERMISSIONS, ROLES, CameraScope, Principal
from csuhub.specs import (
    NO_OPTIONS,
    CallLineSpec,
    CameraDriverSpec,
    ComponentSpec,
    ConfigSectionSpec,
    DiscoverySourceSpec,
    RecordingBackendSpec,
    RetentionPolicySpec,
    WallLayoutSpec,
)
from csuhub.store.retention import FOREVER, LEGAL, PRESERVE, Hold
from csuhub.walls.tiles import (
    LayoutRequest,
    SourceKind,
    Tile,
    TileSource,
    WallLayout,
    check_tiles,
)
from csuhub.web.auth import (
    PRINCIPAL_KEY,
    ROLE_KEY,
    USER_KEY,
    camera_visible,
    require_role,
    require_visible,
)
from csuhub.web.declare import Param, endpoint
from csuhub.web.requests import HUB_KEY, hub_of

#: the running csuhub's version (what the zeroconf plugin advertises)
CSUHUB_VERSION: str = _version

__all__ = [
    "CSUHUB_VERSION",
    "FOREVER",
    "HUB_KEY",
    "LEGAL",
    "NO_OPTIONS",
    "PERMISSIONS",
    "PRESERVE",
    "PRINCIPAL_KEY",
    "ROLES",
    "ROLE_KEY",
    "USER_KEY",
    "AlarmCleared",
    "AlarmRaised",
    "Backoff",
    "CallDesk",
    "CallLine",
    "CallLineSpec",
    "CallRefused",
    "CallReport",
    "CallState",
    "CameraAuthorizationChanged",
    "CameraDiscovered",
    "CameraDriver",
    "CameraDriverSpec",
    "CameraRetention",
    "CameraRetryScheduled",
    "CameraScope",
    "CameraStateChanged",
    "ComponentFailed",
    "ComponentSpec",
    "ComponentStarted",
    "ConfigReloadFailed",
    "ConfigReloaded",
    "ConfigSectionSpec",
    "DiscoveredCamera",
    "DiscoverySource",
    "DiscoverySourceSpec",
    "Event",
    "Expiry",
    "GapRecorded",
    "Hold",
    "HttpCallLine",
    "HubStarted",
    "HubStarting",
    "HubStopping",
    "IncidentCameraLinked",
    "IncidentClosed",
    "IncidentOpened",
    "IncidentRef",
    "IncidentStatus",
    "IncidentUpdated",
    "IncidentWindow",
    "LayoutRequest",
    "LinkedCamera",
    "Location",
    "Param",
    "PluginFailed",
    "PolicyStore",
    "Principal",
    "Priority",
    "PtzDriver",
    "PtzUnsupported",
    "Recorder",
    "RecordingAlert",
    "RecordingBackend",
    "RecordingBackendSpec",
    "RecordingStateChanged",
    "RequisitionChanged",
    "RetentionAlert",
    "RetentionPolicy",
    "RetentionPolicySpec",
    "RetentionSwept",
    "ScreenRef",
    "SegmentRecorded",
    "SegmentRef",
    "SegmentSink",
    "SourceKind",
    "SteppedBackoff",
    "StreamSource",
    "SweepContext",
    "TaskCrashed",
    "Tile",
    "TileSource",
    "WallChanged",
    "WallLayout",
    "WallLayoutSpec",
    "WallRef",
    "camera_visible",
    "check_tiles",
    "cv",
    "endpoint",
    "hookimpl",
    "hub_of",
    "new_run_id",
    "place",
    "place_unlisted",
    "policy_store",
    "require_role",
    "require_visible",
    "staged_key",
    "staging_dir",
]


@dataclass(frozen=True, slots=True)
class IncidentWindow:
    """An incident as retention sees it: which cameras, over which window.

    Typed so a policy reading a field that does not exist fails in its own
    tests, as ``SegmentRef`` does for the ``retention_hold`` hook.
    """

    id: int
    reference: str
    title: str
    cameras: tuple[str, ...]
    start: float
    #: None while the incident is still running (its hold then reaches ``FOREVER``)
    end: float | None
    #: None while the incident is open
    closed_at: float | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class PolicyStore:
    """What a retention policy may do with the store during a sweep, and no more.

    A policy reads the oldest unheld footage, the active holds of a kind and
    the incidents, and places or releases *preservation* holds (level
    ``PRESERVE``: they outlast the retention period, never the legal cap).
    It cannot place a legal hold, nor place or release a hold of a kind the
    core reserves (a judicial requisition's): such a call raises
    ``PermissionError``, fail closed. In a dry run (``csuhub retention sweep
    --dry-run``) nothing is written: the holds are recorded in the sweep's
    simulation instead (and ``holds`` answers with them), so the dry run
    reports what the real sweep would keep and a policy cannot change
    anything by being asked what it would do.
    """

    #: hold kinds only the core places and releases
    RESERVED_KINDS = frozenset({"requisition"})

    def __init__(self, sweep: SweepContext) -> None:
        self._hub = sweep.hub
        self._retention = sweep.hub.store.retention
        self._now = sweep.now
        self.dry_run = sweep.dry_run
        self._simulation = sweep.simulation
        if self.dry_run and self._simulation is None:  # fail closed: never write in one
            raise RuntimeError("a dry run's sweep has no simulation to record holds in")

    async def oldest_unheld(
        self, need: int, cutoffs: Mapping[str, float], default_cutoff: float
    ) -> tuple[dict[str, float], int]:
        """Walk unheld footage oldest first, only segments that ended by their
        camera's cutoff (``default_cutoff`` for a camera not in ``cutoffs``),
        until ``need`` bytes: returns, per camera, the end time to expire up to,
        and the bytes found (less than ``need`` when there is not enough). In a
        dry run, footage under the holds placed so far is not unheld."""
        if self._simulation is not None and self._simulation.entries:
            return await self._simulation.oldest_unheld(
                self._hub, need, dict(cutoffs), default_cutoff
            )
        return await self._retention.oldest_unheld(need, dict(cutoffs), default_cutoff)

    async def holds(self, kind: str) -> list[Hold]:
        """The active holds of ``kind`` (e.g. ``"incident"``), oldest first; in a
        dry run, as if the holds placed and released so far had been."""
        stored = await self._retention.holds(kind=kind)
        if self._simulation is not None:
            return self._simulation.holds(kind, stored, self._now)
        return stored

    async def incidents(self) -> list[IncidentWindow]:
        """Every incident, open and closed, oldest first."""
        return [
            IncidentWindow(
                id=int(row["id"]),
                reference=str(row["reference"]),
                title=str(row.get("title") or ""),
                cameras=tuple(row["cameras"]),
                start=float(row["start"]),
                end=None if row["end"] is None else float(row["end"]),
                closed_at=row["closed_at"],
            )
            for row in await self._retention.incidents()
        ]

    async def place_hold(
        self,
        cameras: Sequence[str],
        start: float,
        end: float,
        *,
        kind: str,
        ref: str,
        reason: str,
        actor: str,
    ) -> None:
        """Hold the cameras' footage over [start, end) at preservation level
        (``end=FOREVER`` holds what is still to be recorded). ``kind`` and
        ``ref`` name the hold, for :meth:`release_holds`; ``reason`` and
        ``actor`` are written in the register."""
        self._check_kind(kind)
        if self._simulation is not None:
            self._simulation.place(
                cameras, start, end, level=PRESERVE, kind=kind, ref=ref, reason=reason, actor=actor
            )
            return
        await self._retention.place(
            list(cameras),
            start,
            end,
            level=PRESERVE,
            kind=kind,
            ref=ref,
            reason=reason,
            actor=actor,
        )

    async def release_holds(self, kind: str, ref: str, actor: str) -> None:
        """Release the active holds of ``kind`` and ``ref``; the footage they
        covered is subject to retention again at this sweep or the next."""
        self._check_kind(kind)
        if self._simulation is not None:
            stored = await self._retention.holds(kind=kind)
            self._simulation.release(kind, ref, [h for h in stored if h.ref == ref], actor)
            return
        await self._retention.release(kind, ref, actor)

    def _check_kind(self, kind: str) -> None:
        if not kind or kind in self.RESERVED_KINDS:
            raise PermissionError(f"a retention policy cannot place or release {kind!r} holds")


def policy_store(sweep: SweepContext) -> PolicyStore:
    """The store facade for one sweep: ``store = policy_store(sweep)`` in ``plan``."""
    return PolicyStore(sweep)
