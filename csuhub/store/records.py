"""What the store hands out: plain frozen dataclasses and its errors.

Nothing here knows SQLite, so a second implementation of the repositories
(the PostgreSQL store of the scale-out work) returns the same types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class StoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    ts: float
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CameraRow:
    """One camera of the register (see ``csuhub.cameras.manager`` for the states)."""

    id: str
    name: str
    driver: str
    ref: str | None
    address: str | None
    state: str
    state_reason: str
    info: dict[str, Any]
    created_at: float
    updated_at: float
    origin: str = "config"
    options: dict[str, Any] = field(default_factory=dict)
    location: dict[str, Any] = field(default_factory=dict)
    authorization_ref: str | None = None
    authorization_issued: str | None = None
    authorization_expires: str | None = None
    authorization_status: str = "missing"
    adopted_at: float | None = None
    adopted_by: str | None = None
    last_seen: float | None = None
    device: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "driver": self.driver,
            "ref": self.ref,
            "address": self.address,
            "state": self.state,
            "state_reason": self.state_reason,
            "origin": self.origin,
            "location": self.location,
            "authorization": {
                "reference": self.authorization_ref,
                "issued": self.authorization_issued,
                "expires": self.authorization_expires,
                "status": self.authorization_status,
            },
            "adopted_at": self.adopted_at,
            "adopted_by": self.adopted_by,
            "last_seen": self.last_seen,
            "info": self.info,
            "device": self.device,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    camera_id: str
    start: float
    end: float
    duration: float
    size: int
    path: str
    sha256: str | None
    status: str
    hold: bool
    hold_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "size": self.size,
            "path": self.path,
            "sha256": self.sha256,
            "status": self.status,
            "hold": self.hold,
            "hold_reason": self.hold_reason,
        }


@dataclass(frozen=True, slots=True)
class NewSegment:
    """A segment to index. A gap before it is recorded only with a known
    interruption (``gap_reason``), and then any hole beyond ``gap_tolerance``
    (the media clock's precision) is real."""

    camera_id: str
    start: float
    end: float
    size: int
    path: str
    sha256: str | None
    status: str = "ok"
    gap_reason: str | None = None
    gap_tolerance: float = 0.25


@dataclass(frozen=True, slots=True)
class Gap:
    id: int
    camera_id: str
    start: float
    end: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": self.end,
            "duration": self.end - self.start,
            "reason": self.reason,
        }
