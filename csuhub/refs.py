"""What a selector hook is told about an incident and a wall.

``layout_for_incident(hub, incident, wall)`` once took ``Any``, and a test
passed dicts: a plugin reading ``incident["prio"]`` failed nowhere but in
production. These are frozen, slotted and checked on construction, like
``SegmentRef`` for ``retention_hold``: a plugin reading a field that does not
exist fails in its own tests.

They are *references*, the read-only view a plugin gets, not the incident and
wall models: the incidents and walls issues build their models and make these
from them (``WallRef.from_config`` already reads a wall of the site file). So
they carry what a decision needs and nothing a plugin should not see: the
caller's number, for one, is not here.

Times are seconds since the epoch (UTC), as everywhere in the hub.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any


class Priority(IntEnum):
    """How urgent an incident is; ordered, so that a rule can say "at least HIGH"
    and a more urgent incident can take a wall screen from a less urgent one."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


class IncidentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def _finite(value: float | None, what: str, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} must be within [{low:g}, {high:g}], not {value!r}")


@dataclass(frozen=True, slots=True)
class Location:
    """Where an incident is, as precisely as the call said: a WGS84 point, an
    address, or both. ``radius_m`` is the uncertainty around the point (a mobile
    call's location is a circle, not a point)."""

    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("a location needs both lat and lon, or neither")
        _finite(self.lat, "lat", -90.0, 90.0)
        _finite(self.lon, "lon", -180.0, 180.0)
        _finite(self.radius_m, "radius_m", 0.0, math.inf)
        if self.radius_m is not None and self.lat is None:
            raise ValueError("radius_m is the uncertainty around lat/lon, which are missing")
        if self.address is not None and not isinstance(self.address, str):
            raise TypeError(f"address must be a string, not {type(self.address).__name__}")

    @property
    def has_point(self) -> bool:
        return self.lat is not None


@dataclass(frozen=True, slots=True)
class LinkedCamera:
    """A camera linked to an incident: nearest first in ``IncidentRef.cameras``."""

    id: str
    #: great-circle distance to the incident's point; None when linked another way
    distance_m: float | None = None
    #: why it was linked: "nearest", "district", "operator"...
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TypeError("a linked camera needs its id (a non-empty string)")
        _finite(self.distance_m, "distance_m", 0.0, math.inf)


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """One incident, as a selector sees it (``layout_for_incident``)."""

    id: int
    #: the dispatch's category, e.g. "fight", "traffic", "fire"
    category: str
    priority: Priority
    opened_at: float
    status: IncidentStatus = IncidentStatus.OPEN
    location: Location | None = None
    #: nearest first
    cameras: tuple[LinkedCamera, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise TypeError(f"incident id must be an int, not {type(self.id).__name__}")
        if not isinstance(self.priority, Priority):
            raise TypeError(f"priority must be a Priority, not {self.priority!r}")
        if not isinstance(self.status, IncidentStatus):
            raise TypeError(f"status must be an IncidentStatus, not {self.status!r}")
        if not isinstance(self.category, str):
            raise TypeError(f"category must be a string, not {type(self.category).__name__}")
        _finite(self.opened_at, "opened_at", 0.0, math.inf)
        if self.location is not None and not isinstance(self.location, Location):
            raise TypeError(f"location must be a Location, not {type(self.location).__name__}")
        if not isinstance(self.cameras, tuple) or not all(
            isinstance(c, LinkedCamera) for c in self.cameras
        ):
            raise TypeError("cameras must be a tuple of LinkedCamera")

    @property
    def camera_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.cameras)


@dataclass(frozen=True, slots=True)
class ScreenRef:
    """One screen of a wall, as it is now."""

    id: str
    layout: str
    name: str = ""
    #: the cameras the screen shows now, in tile order
    cameras: tuple[str, ...] = ()
    #: a pinned screen is never taken by an incident
    pinned: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.cameras, tuple):
            raise TypeError("cameras must be a tuple of camera ids")


@dataclass(frozen=True, slots=True)
class WallRef:
    """The wall, and the screen of it that an incident would take
    (``layout_for_incident`` names a layout for ``screen``)."""

    id: str
    screen: ScreenRef
    name: str = ""
    #: every screen of the wall, ``screen`` included
    screens: tuple[ScreenRef, ...] = ()
    #: the wall layouts registered on this hub: the names a selector may answer
    layouts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.screen, ScreenRef):
            raise TypeError(f"screen must be a ScreenRef, not {type(self.screen).__name__}")
        if not isinstance(self.screens, tuple) or not isinstance(self.layouts, tuple):
            raise TypeError("screens and layouts must be tuples")

    @classmethod
    def from_config(
        cls, wall: Mapping[str, Any], screen_id: str, layouts: Iterable[str] = ()
    ) -> WallRef:
        """From a validated ``walls:`` entry of the site file, for ``screen_id``."""
        screens = tuple(
            ScreenRef(
                id=s["id"],
                layout=s["layout"],
                name=s.get("name") or "",
                cameras=tuple(s.get("cameras") or ()),
            )
            for s in wall["screens"]
        )
        screen = next((s for s in screens if s.id == screen_id), None)
        if screen is None:
            raise KeyError(f"wall {wall['id']!r} has no screen {screen_id!r}")
        return cls(
            id=wall["id"],
            screen=screen,
            name=wall.get("name") or "",
            screens=screens,
            layouts=tuple(sorted(layouts)),
        )
