"""The incident desk: the hub's :class:`~csuhub.incidents.calls.CallDesk`
(``hub.calls``) and the operators' incident actions (``hub.incidents``).

A call line reports; the desk opens the incident once per ``(line, call_id)``
while it is open, links the cameras that see it (``csuhub.incidents.placing``:
the nearest adopted, online ones, the district's when the call has no point)
and holds their footage, in one transaction with the audit entries
(``csuhub.store.incidents``); then fires the bus events. Reports of one call
are serialised by a lock per call, so two legs of a forked call arriving
together open one incident; the transaction and the store's unique index keep
that true across processes too.

A report never undoes what a newer one said: the call's state only moves on
(ringing -> answered -> ended), a report older than the last one applied (a
webhook replayed after a restart, a SIP report overtaken) changes no fact, and
a closed incident's facts never change again. A call id reported as a new call
after its incident closed (a CAD reusing an external id, a SIP Call-ID seen
again after a restart) opens a new incident that follows the closed one.

It runs without a started hub as well (the CLI opens and closes incidents on
the data directory): the cameras' states then come from the register.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from csuhub.events import (
    CameraStateChanged,
    ConfigReloaded,
    IncidentCameraLinked,
    IncidentClosed,
    IncidentOpened,
    IncidentUpdated,
)
from csuhub.incidents.calls import CallReport
from csuhub.incidents.model import Incident, IncidentError, SourceKind
from csuhub.incidents.placing import CameraMap, Placement
from csuhub.incidents.reports import STAGE, differs, moves, new_call, stage
from csuhub.refs import IncidentRef, LinkedCamera, Location, Priority
from csuhub.security.permissions import Principal, system_principal
from csuhub.store.incidents import Link

if TYPE_CHECKING:
    from csuhub.cameras.manager import CameraManager
    from csuhub.config.settings import IncidentSettings
    from csuhub.protocols import CallLine
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)

#: how often open incidents are checked against ``incidents.auto_close``
AUTO_CLOSE_EVERY = 60.0
AUTO_CLOSE_OUTCOME = "auto_closed"


def line_principal(line: str) -> Principal:
    """Who a call line's reports are audited as: the line, acting for the hub
    (it holds no permission: it reaches nothing but the desk)."""
    return Principal(name=f"line:{line}", kind="hub", roles=(), permissions=frozenset(), via=line)


class IncidentDesk:
    """``hub.incidents`` and ``hub.calls``."""

    def __init__(self, hub: HubServices, cameras: CameraManager) -> None:
        self.hub = hub
        self.cameras = cameras
        #: the running call lines by id (``hub.call_lines``), filled by ``lines.start_lines``
        self.lines: dict[str, CallLine] = {}
        #: where incidents are and which cameras see them
        self.map = CameraMap(hub, cameras)
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._unsub: list[Callable[[], None]] = []

    @property
    def settings(self) -> IncidentSettings:
        return self.hub.config.settings.incidents

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Follow the register (the index is rebuilt when cameras come or go, or the
        site changes), and close stale incidents if ``incidents.auto_close`` says so."""
        self._unsub.append(self.hub.bus.listen(CameraStateChanged, self.map.on_camera))
        self._unsub.append(self.hub.bus.listen(ConfigReloaded, lambda event: self.invalidate()))
        if self.settings.auto_close > 0:
            self.hub.supervisor.spawn("incidents-auto-close", self._auto_close_loop)

    async def stop(self) -> None:
        for undo in self._unsub:
            undo()
        self._unsub.clear()
        await self.hub.supervisor.cancel("incidents-auto-close")

    def invalidate(self) -> None:
        """The cameras' places may have changed: rebuild the index at the next use."""
        self.map.invalidate()

    def linkable(self, camera_id: str) -> bool:
        """Adopted (in the register, enabled) and online now."""
        return self.map.linkable(camera_id)

    async def rank(self, location: Location | None, district: str | None = None) -> list[Link]:
        """The cameras to link (``CameraMap.place``); a failure links none."""
        return (await self.map.place(location, district)).links

    # -- calls (hub.calls) ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _call_lock(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def report(self, call: CallReport) -> IncidentRef:
        """Open the incident of a new call, or update the one of a known call."""
        if not isinstance(call, CallReport):
            raise TypeError(f"report() takes a CallReport, not {type(call).__name__}")
        async with self._call_lock((call.line, call.call_id)):
            found = await self.hub.store.incidents.by_call(call.line, call.call_id)
            if found is not None:
                closed = Incident.from_row(found)
                if closed.is_open or not new_call(closed, call):
                    return (await self._update_call(closed, call)).to_ref()
            incident = await self._open_call(call, None if found is None else int(found["id"]))
            if incident is not None:
                return incident.to_ref()
            found = await self.hub.store.incidents.by_call(call.line, call.call_id)
            assert found is not None  # opened by another process meanwhile
            return (await self._update_call(Incident.from_row(found), call)).to_ref()

    async def _open_call(self, call: CallReport, follows: int | None) -> Incident | None:
        received = call.received_at or time.time()
        placed = await self.map.place(call.location)
        fields = {
            "source_kind": str(SourceKind.CALL_LINE),
            "source_line": call.line,
            "call_id": call.call_id,
            "caller": call.caller,
            **_location_fields(placed.location),
            "district": placed.district,
            "category": call.category,
            "priority": int(call.priority),
            "text": call.text,
            "received_at": received,
            "call_state": str(call.state),
            "follows": follows,
            "reported_at": received,
        }
        hold_start = received - self.settings.hold_before
        who = line_principal(call.line)
        store = self.hub.store.incidents
        _, opened, added, row = await store.open(fields, placed.links, hold_start, who)
        if not opened or row is None:
            return None
        return self._opened(row, added, SourceKind.CALL_LINE, call.line)

    def _opened(
        self, row: dict[str, Any], added: list[Link], source: SourceKind, line: str | None
    ) -> Incident:
        incident = Incident.from_row(row)
        ref = incident.to_ref()
        self.hub.bus.fire(IncidentOpened(incident=ref, source=str(source), line=line))
        if added:
            self.hub.bus.fire(IncidentCameraLinked(incident=ref, cameras=_linked(added)))
        return incident

    async def _update_call(self, incident: Incident, call: CallReport) -> Incident:
        """Apply what the report says that is new: its state if further along,
        and its facts if the incident is open and the report not older than the
        last one applied (else they are ignored, and logged)."""
        received = call.received_at or time.time()
        changes: dict[str, Any] = {}
        if STAGE[call.state] > stage(incident.call_state):
            changes["call_state"] = str(call.state)
        late = incident.reported_at is not None and received < incident.reported_at
        placed: Placement | None = None
        if incident.is_open and not late:
            placed = await self._facts(incident, call, changes)
            if received > (incident.reported_at or 0.0):
                changes["reported_at"] = received
        else:
            ignored = differs(incident, call)
            if ignored:
                _LOGGER.info(
                    "call %s/%s: %s report changes no fact of incident %s (%s ignored)",
                    call.line,
                    call.call_id,
                    "a late" if incident.is_open else "a closed incident's",
                    incident.id,
                    ", ".join(ignored),
                )
        if not changes:  # a retransmission: nothing new, nothing written
            return incident
        links: list[Link] = []
        distances: dict[str, float | None] | None = None
        if placed is not None:  # it moved: every link is measured from the new point
            links = placed.links
            distances = {
                c.id: await self.map.distance(placed.location, c.id) for c in incident.cameras
            }
        context = {"line": call.line, "call_id": call.call_id}
        added, row = await self.hub.store.incidents.update(
            incident.id, changes, links, line_principal(call.line), context, distances
        )
        facts = tuple(c for c in changes if c != "reported_at")
        if not facts and not added:
            return self._incident(incident.id, row)
        return self._updated(incident.id, row, facts, added or [])

    async def _facts(
        self, incident: Incident, call: CallReport, changes: dict[str, Any]
    ) -> Placement | None:
        """Put the report's new facts in ``changes``; the new placement if it moved."""
        if call.caller is not None and call.caller != incident.caller:
            changes["caller"] = call.caller
        placed = None
        if moves(incident.location, call.location):
            placed = await self.map.place(call.location)
            if placed.location != incident.location:
                changes.update(_location_fields(placed.location))
                if placed.district != incident.district:
                    changes["district"] = placed.district
            else:
                placed = None
        if call.category != incident.category:
            changes["category"] = call.category
        if call.priority is not incident.priority:
            changes["priority"] = int(call.priority)
        if call.text and call.text != incident.text:
            changes["text"] = call.text
        return placed

    def _updated(
        self,
        incident_id: int,
        row: dict[str, Any] | None,
        changes: tuple[str, ...],
        added: list[Link],
    ) -> Incident:
        incident = self._incident(incident_id, row)
        ref = incident.to_ref()
        names = tuple(dict.fromkeys("location" if c in _WHERE else c for c in changes))
        self.hub.bus.fire(IncidentUpdated(incident=ref, changes=names))
        if added:
            self.hub.bus.fire(IncidentCameraLinked(incident=ref, cameras=_linked(added)))
        return incident

    # -- operators' actions (hub.incidents) ------------------------------------------

    async def get(self, incident_id: int) -> Incident | None:
        row = await self.hub.store.incidents.get(incident_id)
        return None if row is None else Incident.from_row(row)

    async def _get(self, incident_id: int) -> Incident:
        return self._incident(incident_id, await self.hub.store.incidents.get(incident_id))

    @staticmethod
    def _incident(incident_id: int, row: dict[str, Any] | None) -> Incident:
        if row is None:
            raise IncidentError(f"no incident {incident_id}", "not_found")
        return Incident.from_row(row)

    async def list(
        self,
        *,
        status: str | None = None,
        start: float | None = None,
        end: float | None = None,
        camera: str | None = None,
        limit: int = 200,
    ) -> list[Incident]:
        """Newest first."""
        rows = await self.hub.store.incidents.select(status, start, end, camera, limit)
        return [Incident.from_row(r) for r in rows]

    async def open(
        self,
        who: Principal,
        *,
        category: str,
        priority: Priority = Priority.NORMAL,
        location: Location | None = None,
        district: str | None = None,
        text: str = "",
        caller: str | None = None,
        received_at: float | None = None,
        source: SourceKind = SourceKind.OPERATOR,
    ) -> Incident:
        """Open an incident by hand (or for a plugin), with its nearest cameras."""
        received = time.time() if received_at is None else received_at
        fields = {
            "source_kind": str(source),
            "caller": caller,
            **_location_fields(location),
            "district": district,
            "category": category,
            "priority": int(priority),
            "text": text,
            "received_at": received,
            "reported_at": received,
        }
        placed = await self.map.place(location, district)
        fields.update(_location_fields(placed.location), district=placed.district)
        hold_start = received - self.settings.hold_before
        store = self.hub.store.incidents
        _, _, added, row = await store.open(fields, placed.links, hold_start, who)
        assert row is not None  # no call id: always a new incident
        return self._opened(row, added, source, None)

    async def note(self, incident_id: int, text: str, who: Principal) -> Incident:
        result, row = await self.hub.store.incidents.note(incident_id, text, who)
        self._check(incident_id, result)
        return self._updated(incident_id, row, ("note",), [])

    async def bookmark(
        self, incident_id: int, camera_id: str, moment: float, note: str, who: Principal
    ) -> Incident:
        await self._known_camera(camera_id)
        result, row = await self.hub.store.incidents.bookmark(
            incident_id, camera_id, moment, note, who
        )
        self._check(incident_id, result)
        return self._updated(incident_id, row, ("bookmark",), [])

    async def link(self, incident_id: int, camera_id: str, who: Principal) -> Incident:
        """Link a camera by hand (reason ``operator``): its footage is held too."""
        await self._known_camera(camera_id)
        distance = await self._distance(incident_id, camera_id)
        result, row = await self.hub.store.incidents.link(
            incident_id, [Link(camera_id, distance, "operator")], who
        )
        self._check(incident_id, result)
        incident = self._incident(incident_id, row)
        if result:
            added = result if isinstance(result, list) else []
            ref = incident.to_ref()
            self.hub.bus.fire(IncidentCameraLinked(incident=ref, cameras=_linked(added)))
        return incident

    async def close(self, incident_id: int, outcome: str, who: Principal) -> Incident:
        """Close with the outcome; the incident's holds end now and are released."""
        result, row = await self.hub.store.incidents.close(incident_id, outcome, who)
        self._check(incident_id, result)
        incident = self._incident(incident_id, row)
        self.hub.bus.fire(IncidentClosed(incident=incident.to_ref(), outcome=outcome))
        return incident

    async def _distance(self, incident_id: int, camera_id: str) -> float | None:
        """How far a camera linked by hand is from the incident's point, if both
        have one (the list is nearest first; an operator's link says so too)."""
        incident = await self._get(incident_id)
        return await self.map.distance(incident.location, camera_id)

    @staticmethod
    def _check(incident_id: int, result: object) -> None:
        if result is None:
            raise IncidentError(f"no incident {incident_id}", "not_found")
        if result is False:
            raise IncidentError(f"incident {incident_id} is closed", "conflict")

    async def _known_camera(self, camera_id: str) -> None:
        declared = any(c.id == camera_id for c in self.hub.config.settings.cameras)
        if not declared and await self.hub.store.get_camera(camera_id) is None:
            raise IncidentError(f"no camera {camera_id!r}", "invalid", "camera")

    # -- auto close --------------------------------------------------------------

    async def close_stale(self, now: float | None = None) -> list[int]:
        """Close the open incidents unchanged for ``incidents.auto_close``."""
        after = self.settings.auto_close
        if after <= 0:
            return []
        moment = time.time() if now is None else now
        closed = []
        for incident_id in await self.hub.store.incidents.stale(moment - after):
            try:
                await self.close(incident_id, AUTO_CLOSE_OUTCOME, system_principal("hub"))
            except IncidentError:  # closed meanwhile
                continue
            closed.append(incident_id)
        return closed

    async def _auto_close_loop(self) -> None:
        while True:
            await asyncio.sleep(min(AUTO_CLOSE_EVERY, max(self.settings.auto_close / 4, 1.0)))
            await self.close_stale()


_WHERE = frozenset({"lat", "lon", "radius_m", "address", "district"})


def _location_fields(location: Location | None) -> dict[str, Any]:
    if location is None:
        return {}
    return {
        "lat": location.lat,
        "lon": location.lon,
        "radius_m": location.radius_m,
        "address": location.address,
    }


def _linked(links: list[Link]) -> tuple[LinkedCamera, ...]:
    return tuple(LinkedCamera(link.camera_id, link.distance_m, link.reason) for link in links)


__all__ = ["IncidentDesk", "line_principal"]
