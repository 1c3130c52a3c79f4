"""Where an incident is, and which cameras see it: the desk's map.

A call or an operator gives a point, an address, or both. An address without a
point is asked of the ``geocode_location`` plugins (geocoding is not built
in); when none answers, the district the address names (a district of the
site, or of a camera, as a whole word) places the incident and links that
district's cameras. A point links the nearest adopted, online cameras
(``csuhub.incidents.nearest``), and gives the incident the district of the
nearest of them when it has none.

Kept apart from the desk (``csuhub.incidents.desk``), which records what this
module works out: the index here is rebuilt when cameras come or go, and a
ranking that fails links nothing but never stops an incident from opening.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.cameras.model import ADOPTED, DEGRADED, DISABLED, ONLINE, REMOVED
from csuhub.events import CameraStateChanged
from csuhub.incidents.nearest import CameraIndex, CameraPoint, haversine_m
from csuhub.refs import Location
from csuhub.selecting import HubSelectors
from csuhub.store.incidents import Link

if TYPE_CHECKING:
    from csuhub.cameras.manager import CameraManager
    from csuhub.config.settings import IncidentSettings
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)

#: camera states a camera is linked by proximity in
LINKABLE = frozenset({ONLINE, DEGRADED})
#: the widest search, whatever the call's uncertainty (the schema's ``radius`` maximum)
MAX_RADIUS = 50_000.0


@dataclass(frozen=True, slots=True)
class Placement:
    """What the desk records of where an incident is."""

    #: the location as given, with the geocoder's point when it had none
    location: Location | None
    district: str | None
    #: the cameras to link, in rank order
    links: list[Link]

    @property
    def has_point(self) -> bool:
        return self.location is not None and self.location.has_point


class CameraMap:
    """The cameras' places, the ranking, the geocoder and the districts."""

    def __init__(self, hub: HubServices, cameras: CameraManager) -> None:
        self.hub = hub
        self.cameras = cameras
        self._index: CameraIndex | None = None
        self._stored_states: dict[str, str] = {}
        self._points: dict[str, tuple[float, float]] = {}
        self._districts: dict[str, str] = {}

    @property
    def settings(self) -> IncidentSettings:
        return self.hub.config.settings.incidents

    @property
    def index(self) -> CameraIndex | None:
        """The index as built (None until its next use)."""
        return self._index

    def invalidate(self) -> None:
        """The cameras' places may have changed: rebuild the index at the next use."""
        self._index = None

    def on_camera(self, event: CameraStateChanged) -> None:
        # health flaps (online <-> offline) do not move cameras: the filter reads
        # states live; joining or leaving the register does
        if event.new_state in (ADOPTED, REMOVED, DISABLED) or event.old_state is None:
            self.invalidate()

    async def camera_index(self) -> CameraIndex:
        if self._index is not None:
            return self._index
        points = []
        states: dict[str, str] = {}
        where_is: dict[str, tuple[float, float]] = {}
        districts: dict[str, str] = {}
        for row in await self.hub.store.list_cameras():
            states[row.id] = row.state
            where = row.location or {}
            if isinstance(where.get("district"), str) and row.state != REMOVED:
                districts[row.id] = where["district"]
            lat, lon = where.get("lat"), where.get("lon")
            if row.state == REMOVED or lat is None or lon is None:
                continue
            where_is[row.id] = (float(lat), float(lon))
            points.append(
                CameraPoint(
                    id=row.id,
                    lat=float(lat),
                    lon=float(lon),
                    district=where.get("district"),
                    bearing=_number(where.get("bearing")),
                    fov=_number(where.get("fov")),
                )
            )
        self._stored_states, self._points, self._districts = states, where_is, districts
        self._index = CameraIndex(points)
        return self._index

    def linkable(self, camera_id: str) -> bool:
        """Adopted (in the register, enabled) and online now: the live state when
        this process drives the cameras, else the register's."""
        entry = self.cameras.entries.get(camera_id)
        if entry is not None and not entry.enabled:
            return False
        state = self.cameras.states.get(camera_id) or self._stored_states.get(camera_id)
        return state in LINKABLE

    async def distance(self, location: Location | None, camera_id: str) -> float | None:
        """How far a camera is from the incident's point, if both have one."""
        await self.camera_index()
        point = self._points.get(camera_id)
        if location is None or location.lat is None or location.lon is None or point is None:
            return None
        return float(haversine_m(location.lat, location.lon, *point))

    # -- placing an incident --------------------------------------------------------

    async def place(self, location: Location | None, district: str | None = None) -> Placement:
        """Where the incident is and the cameras to link: the nearest linkable ones
        within ``incidents.radius`` (plus the call's uncertainty) of its point (the
        geocoder's, for an address alone), else the district's (``district``, or
        the one the address names), else none."""
        location = self.geocoded(location, district)
        try:
            await self.camera_index()
        except Exception:
            _LOGGER.exception("incidents: the cameras' places could not be read; none linked")
            return Placement(location, district, [])
        if location is not None and location.lat is not None and location.lon is not None:
            links = self._nearest(location)
            nearest = min(
                (link for link in links if link.distance_m is not None),
                key=lambda link: link.distance_m or 0.0,
                default=None,
            )
            if district is None and nearest is not None:
                district = self._districts.get(nearest.camera_id)
            return Placement(location, district, links)
        if district is None and location is not None and location.address:
            district = self.district_named(location.address)
        return Placement(location, district, self._in_district(district) if district else [])

    def geocoded(self, location: Location | None, district: str | None) -> Location | None:
        """``location`` with the ``geocode_location`` plugins' point when it has an
        address and no point (its address and the given uncertainty kept)."""
        if location is None or location.has_point or not location.address:
            return location
        if not isinstance(self.hub, HubSelectors):  # a hub without selectors: no plugin
            return location
        try:
            found = self.hub.geocode(location.address, district)
        except Exception:  # a selector's failure is passed over in select(); this is ours
            _LOGGER.exception("incidents: geocoding an address failed; placed by district")
            return location
        if found is None:
            return location
        return Location(found.lat, found.lon, found.radius_m, address=location.address)

    def district_named(self, address: str) -> str | None:
        """The district ``address`` names as a whole word, case-insensitively: one
        of ``hub.districts`` or of a camera's (the longest when several match), as
        the site spells it."""
        names = {d.casefold(): d for d in self._districts.values()}
        names.update({d.casefold(): d for d in self.hub.config.settings.hub.districts})
        text = address.casefold()
        found = [
            spelled
            for folded, spelled in names.items()
            if folded.strip() and re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", text)
        ]
        return max(found, key=lambda d: (len(d), d), default=None)

    def _nearest(self, location: Location) -> list[Link]:
        assert self._index is not None and location.lat is not None and location.lon is not None
        settings = self.settings
        try:
            radius = min(settings.radius + (location.radius_m or 0.0), MAX_RADIUS)
            ranked = self._index.nearest(
                location.lat,
                location.lon,
                radius_m=radius,
                limit=settings.max_cameras,
                prefer_fov=settings.prefer_field_of_view,
                allowed=self.linkable,
            )
        except Exception:
            _LOGGER.exception("incidents: ranking the nearest cameras failed; none linked")
            return []
        return [Link(r.id, float(r.distance_m), "nearest") for r in ranked]

    def _in_district(self, district: str) -> list[Link]:
        assert self._index is not None
        try:
            found = [c for c in self._index.in_district(district) if self.linkable(c)]
        except Exception:
            _LOGGER.exception("incidents: finding the district's cameras failed; none linked")
            return []
        return [Link(c, None, "district") for c in found[: self.settings.max_cameras]]


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


__all__ = ["LINKABLE", "CameraMap", "Placement"]
