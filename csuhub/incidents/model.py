"""An incident as the centre knows it, and its JSON shape (docs/incidents.md).

:class:`Incident` is the whole record, the caller's number included; what a
plugin sees is :meth:`Incident.to_ref` (``csuhub.refs.IncidentRef``: no
caller), and what a person sees is :meth:`Incident.as_dict`, with the number
masked unless they hold ``incident.caller.view`` and the cameras outside
their scope left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from csuhub.refs import IncidentRef, IncidentStatus, LinkedCamera, Location, Priority

__all__ = [
    "Bookmark",
    "Incident",
    "IncidentError",
    "Note",
    "SourceKind",
    "mask_caller",
]

#: the mask a hidden character of a caller's number shows as
MASK = "\u2022"


class SourceKind(StrEnum):
    CALL_LINE = "call_line"
    OPERATOR = "operator"
    PLUGIN = "plugin"


class IncidentError(Exception):
    """An incident action refused; ``kind`` says how (``invalid``, ``not_found``,
    ``conflict``: the incident is closed) for the caller's status code."""

    def __init__(self, message: str, kind: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def mask_caller(number: str | None) -> str | None:
    """``+33 6 12 34 56 78`` -> ``+33 6 •• •• •• 78``: the first three and last two
    letters or digits stay (enough to tell two calls apart on the wall, not to
    call back), the rest show as ``•``; separators stay. A number of fewer than
    eight letters and digits (a short code, an extension) is masked whole."""
    if number is None:
        return None
    positions = [i for i, c in enumerate(number) if c.isalnum()]
    keep = set(positions[:3] + positions[-2:]) if len(positions) >= 8 else set()
    return "".join(c if (i in keep or not c.isalnum()) else MASK for i, c in enumerate(number))


@dataclass(frozen=True, slots=True)
class Bookmark:
    """A moment of one camera's footage an operator marked."""

    id: int
    camera_id: str
    time: float
    note: str
    created_at: float
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera": self.camera_id,
            "time": self.time,
            "note": self.note,
            "by": self.created_by,
            "at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    text: str
    created_at: float
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "by": self.created_by, "at": self.created_at}


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident: where it came from, where it is, what it links and holds."""

    id: int
    status: IncidentStatus
    source_kind: SourceKind
    #: the call line's id and the line's call id, for a call
    source_line: str | None
    call_id: str | None
    #: as received (withheld: None); show it through :func:`mask_caller`
    caller: str | None
    opened_at: float
    updated_at: float
    closed_at: float | None
    #: when the call reached the line (or the operator opened it)
    received_at: float
    #: where the footage hold begins (``received_at - incidents.hold_before``)
    hold_start: float
    location: Location | None
    #: its district: the operator's, the one its address names, or the
    #: district of its nearest linked camera
    district: str | None
    category: str
    priority: Priority
    text: str
    #: linking order: nearest first, then those linked later
    cameras: tuple[LinkedCamera, ...]
    bookmarks: tuple[Bookmark, ...]
    notes: tuple[Note, ...]
    outcome: str | None
    call_state: str | None
    opened_by: str | None
    closed_by: str | None
    #: the closed incident of the same call id this one follows (a reused id)
    follows: int | None = None
    #: the newest ``received_at`` of the reports applied (older ones change no fact)
    reported_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status is IncidentStatus.OPEN

    @property
    def camera_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.cameras)

    def to_ref(self) -> IncidentRef:
        """What a plugin (a wall layout selector, an event listener) is told."""
        return IncidentRef(
            id=self.id,
            category=self.category,
            priority=self.priority,
            opened_at=self.opened_at,
            status=self.status,
            location=self.location,
            cameras=self.cameras,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Incident:
        """From a row of ``csuhub.store.incidents``."""
        location = None
        if row.get("lat") is not None or row.get("address"):
            location = Location(
                lat=row.get("lat"),
                lon=row.get("lon"),
                radius_m=row.get("radius_m") if row.get("lat") is not None else None,
                address=row.get("address"),
            )
        opened = float(row["opened_at"])
        return cls(
            id=int(row["id"]),
            status=IncidentStatus(row.get("status") or "open"),
            source_kind=SourceKind(row.get("source_kind") or "operator"),
            source_line=row.get("source_line"),
            call_id=row.get("call_id"),
            caller=row.get("caller"),
            opened_at=opened,
            updated_at=float(row.get("updated_at") or opened),
            closed_at=row.get("closed_at"),
            received_at=float(row.get("received_at") or opened),
            hold_start=float(row["start"]),
            location=location,
            district=row.get("district"),
            category=str(row.get("category") or ""),
            priority=Priority(int(row.get("priority") or Priority.NORMAL)),
            text=str(row.get("text") or ""),
            cameras=tuple(
                LinkedCamera(c["camera_id"], c["distance_m"], c["reason"])
                for c in row.get("linked", ())
            ),
            bookmarks=tuple(
                Bookmark(
                    b["id"], b["camera_id"], b["time"], b["note"], b["created_at"], b["created_by"]
                )
                for b in row.get("bookmarks", ())
            ),
            notes=tuple(
                Note(n["id"], n["text"], n["created_at"], n["created_by"])
                for n in row.get("notes", ())
            ),
            outcome=row.get("outcome"),
            call_state=row.get("call_state"),
            opened_by=row.get("opened_by"),
            closed_by=row.get("closed_by"),
            follows=row.get("follows"),
            reported_at=row.get("reported_at"),
        )

    def as_dict(
        self,
        *,
        caller_visible: bool = False,
        camera_visible: Callable[[str], bool] | None = None,
    ) -> dict[str, Any]:
        """The API's JSON shape. The caller is masked unless ``caller_visible``;
        cameras ``camera_visible`` refuses are left out (and their bookmarks)."""
        seen = camera_visible or (lambda camera_id: True)
        location = self.location
        return {
            "id": self.id,
            "status": str(self.status),
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "closed_at": self.closed_at,
            "received_at": self.received_at,
            "source": {
                "kind": str(self.source_kind),
                "line": self.source_line,
                "call_id": self.call_id,
            },
            "caller": self.caller if caller_visible else mask_caller(self.caller),
            "location": None
            if location is None
            else {
                "lat": location.lat,
                "lon": location.lon,
                "radius_m": location.radius_m,
                "address": location.address,
            },
            "district": self.district,
            "category": self.category,
            "priority": str(self.priority),
            "text": self.text,
            "cameras": [
                {"id": c.id, "distance_m": c.distance_m, "reason": c.reason}
                for c in self.cameras
                if seen(c.id)
            ],
            "bookmarks": [b.as_dict() for b in self.bookmarks if seen(b.camera_id)],
            "notes": [n.as_dict() for n in self.notes],
            "outcome": self.outcome,
            "call_state": self.call_state,
            "opened_by": self.opened_by,
            "closed_by": self.closed_by,
            "follows": self.follows,
        }
