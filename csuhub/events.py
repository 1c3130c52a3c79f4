"""Event types carried by the bus.

Events are frozen dataclasses so a listener can never alter what the next
listener sees, and so that every payload is typed. ``name`` is the stable wire
name used in JSON output, logs and (later) the panel's WebSocket.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from csuhub.refs import IncidentRef, LinkedCamera


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base of every event. Listening to ``Event`` matches all events."""

    name: ClassVar[str] = "event"
    time_fired: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view; used by ``--json`` output and the audit trail."""
        data = dataclasses.asdict(self)
        data["event"] = self.name
        return data


MATCH_ALL = Event
"""Subscribe with this type to receive every event fired on the bus."""


# --- hub lifecycle -------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class HubStarting(Event):
    name: ClassVar[str] = "hub_starting"
    hub_name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class HubStarted(Event):
    name: ClassVar[str] = "hub_started"
    hub_name: str
    web_url: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class HubStopping(Event):
    name: ClassVar[str] = "hub_stopping"
    hub_name: str
    reason: str = ""


# --- plugins and supervision ---------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PluginFailed(Event):
    """A plugin raised during import or setup and was disabled."""

    name: ClassVar[str] = "plugin_failed"
    plugin: str
    stage: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskCrashed(Event):
    """A supervised background task raised; it will be restarted after ``restart_in``."""

    name: ClassVar[str] = "task_crashed"
    task: str
    error: str
    restart_in: float
    crashes: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ComponentStarted(Event):
    """A long-lived object built from a plugin spec (source, recorder...) is running."""

    name: ClassVar[str] = "component_started"
    kind: str
    component: str
    plugin: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ComponentFailed(Event):
    name: ClassVar[str] = "component_failed"
    kind: str
    component: str
    plugin: str
    reason: str


# --- cameras ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraDiscovered(Event):
    """A discovery source saw a camera. ``ref`` is the stable identity (endpoint reference)."""

    name: ClassVar[str] = "camera_discovered"
    source: str
    ref: str
    address: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraStateChanged(Event):
    name: ClassVar[str] = "camera_state_changed"
    camera_id: str
    old_state: str | None
    new_state: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraAuthorizationChanged(Event):
    """A camera's prefectoral authorisation became valid, expiring, expired or missing.

    Operators are alerted on ``expiring`` (30 days ahead) and ``expired``;
    recording stops on ``expired``.
    """

    name: ClassVar[str] = "camera_authorization_changed"
    camera_id: str
    old_status: str | None
    status: str
    expires: str | None


# --- configuration ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfigReloaded(Event):
    """A new configuration was validated and applied (only what changed)."""

    name: ClassVar[str] = "config_reloaded"
    trigger: str
    sections: list[str]
    cameras: dict[str, list[str]]
    restart_required: list[str]


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfigReloadFailed(Event):
    """A reload was refused; the running configuration stays."""

    name: ClassVar[str] = "config_reload_failed"
    trigger: str
    errors: list[str]


# --- recording ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingStateChanged(Event):
    """recording | starting | retrying | blocked | stopped, with the reason."""

    name: ClassVar[str] = "recording_state_changed"
    camera_id: str
    state: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SegmentRecorded(Event):
    name: ClassVar[str] = "segment_recorded"
    camera_id: str
    segment_id: int
    start: float
    end: float
    size: int
    path: str
    #: seconds from the file closing (ffmpeg listing it) to this event
    latency: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class GapRecorded(Event):
    name: ClassVar[str] = "gap_recorded"
    camera_id: str
    start: float
    end: float
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingAlert(Event):
    """A camera that should record has not for ``minutes``, or the disk is full."""

    name: ClassVar[str] = "recording_alert"
    camera_id: str | None
    kind: str  # not_recording | disk_full | missing_files
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AlarmRaised(Event):
    """A condition operators must act on began, or is still there (``reminder``).

    Alarms are states (``csuhub.alarms``): raised once, repeated only every
    reminder interval while the condition lasts, then cleared with
    :class:`AlarmCleared`. ``source`` is the component that owns it
    (``recording``, ``retention``...).
    """

    name: ClassVar[str] = "alarm_raised"
    source: str
    kind: str
    camera_id: str | None
    message: str
    #: wall-clock time the condition began
    since: float
    reminder: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class AlarmCleared(Event):
    """The condition behind an alarm ended; ``duration`` is how long it lasted."""

    name: ClassVar[str] = "alarm_cleared"
    source: str
    kind: str
    camera_id: str | None
    message: str
    since: float
    duration: float


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraRetryScheduled(Event):
    """A camera refused us (e.g. its credentials); the next attempt is at ``retry_at``.

    Authentication failures back off to minutes: retrying every few seconds
    locks the account on many cameras.
    """

    name: ClassVar[str] = "camera_retry_scheduled"
    camera_id: str
    reason: str
    retry_in: float
    retry_at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class RetentionAlert(Event):
    """Operators must know before footage goes, or when retention cannot do its job.

    kinds: ``expiring`` (preserved footage reaches the legal cap within the alert
    window), ``storage_pressure`` (the sweeper is about to free disk space),
    ``below_minimum`` (freeing space would go below a camera's authorised minimum),
    ``sweep_failed``, ``policy_failed``.
    """

    name: ClassVar[str] = "retention_alert"
    camera_id: str | None
    kind: str
    message: str
    expires_at: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RetentionSwept(Event):
    """A sweep finished: what it destroyed, per policy (the register has the detail)."""

    name: ClassVar[str] = "retention_swept"
    sweep_id: int
    segments: int
    bytes: int
    by_policy: dict[str, int]
    duration: float


@dataclass(frozen=True, kw_only=True, slots=True)
class RequisitionChanged(Event):
    """A judicial requisition was created or moved along its workflow."""

    name: ClassVar[str] = "requisition_changed"
    requisition_id: int
    reference: str
    status: str


# --- incidents (csuhub/incidents/, docs/incidents.md) -------------------------------
# Fired after the change is committed to the store (and audited). ``incident`` is
# the reference a plugin sees (no caller's number), as it is after the change.


@dataclass(frozen=True, kw_only=True, slots=True)
class IncidentOpened(Event):
    """A call (or an operator, or a plugin) opened an incident; its nearest
    cameras are already linked and their footage held."""

    name: ClassVar[str] = "incident.opened"
    incident: IncidentRef
    #: call_line | operator | plugin
    source: str
    #: the call line's id, for a call
    line: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class IncidentUpdated(Event):
    """A later report of its call (answered, abandoned, ended, a better location)
    or an operator changed it; ``changes`` names what changed (``call_state``,
    ``location``, ``note``, ``bookmark``...)."""

    name: ClassVar[str] = "incident.updated"
    incident: IncidentRef
    changes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class IncidentCameraLinked(Event):
    """Cameras were linked to an incident (nearest, by district, by an operator);
    ``cameras`` are the new links only, ``incident.cameras`` all of them."""

    name: ClassVar[str] = "incident.camera_linked"
    incident: IncidentRef
    cameras: tuple[LinkedCamera, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class IncidentClosed(Event):
    """An incident was closed with its outcome; its footage holds were released
    (a requisition's own hold still keeps what it covers)."""

    name: ClassVar[str] = "incident.closed"
    incident: IncidentRef
    outcome: str


# --- walls (csuhub/walls/, docs/walls.md) ----------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class WallChanged(Event):
    """A screen of a wall changed and the change is stored (and audited); the
    kiosks fetch the wall again. ``version`` is the wall's, counting every change;
    ``cause`` says who changed it: ``operator``, ``incident`` (a spotlight took or
    followed an incident), ``revert`` (the screen went back to what it showed
    before), ``site`` (the site file declares the screen differently now),
    ``hold`` (a closed incident is kept on the screen for its ``hold``) or
    ``waiting`` (the wall's waiting list of incidents changed; ``screen`` is
    then ``""``)."""

    name: ClassVar[str] = "wall.changed"
    wall: str
    screen: str
    version: int
    cause: str
