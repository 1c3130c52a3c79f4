"""The spotlight rules: incidents take the wall's designated screens by themselves.

A screen is designated when its layout (the one it goes back to) is
``spotlight`` or ``incident_spotlight``, or its options say ``spotlight:
true``. When an incident opens, each wall with designated screens gives it
one of them:

1. a designated screen neither pinned nor showing an incident (in the site
   file's order); else
2. one still holding an incident that has closed (``hold``); else
3. the one showing the lowest-priority incident, if that is *lower* than the
   new one's (the oldest such incident first): it goes back to the wall's
   waiting list. An equal or lower priority never takes a screen: the new
   incident waits.

Screens whose options carry ``min_priority`` or ``categories`` take only the
incidents at or above that priority, of those categories (and only those,
of the waiting list); an incident no screen of the wall accepts does not
wait there.

The layout is what ``hub.layout_for(incident, wall)`` (the
``layout_for_incident`` selector) answers, if that layout is registered;
else the screen's own spotlight layout, or ``spotlight``. It is given the
incident's cameras, nearest first (the screen's own options if the layout is
the screen's own, the layout's defaults otherwise), and follows the incident
as cameras are linked.

When the incident closes, the screen keeps it ``hold`` seconds, then the
waiting incident of highest priority (the oldest first) takes the screen, or
the screen goes back to exactly what it showed before. ``timeout`` bounds how
long an incident keeps a screen at all, open or not. A pinned screen is
never taken (an incident already on it still goes when it closes).

An open incident let go by its ``timeout``, or whose screen an operator set
to something else, is **released** on that wall: its later updates and
linked cameras take no screen of the wall again (the timeout or the
operator's choice would otherwise last until the next call refinement),
unless its priority rises above the one it had when released. The released
set is stored with the wall's state, so a restart keeps it; an incident
leaves it when it closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from csuhub.events import IncidentCameraLinked, IncidentClosed, IncidentOpened, IncidentUpdated
from csuhub.refs import IncidentRef, IncidentStatus, Priority, ScreenRef, WallRef
from csuhub.security.permissions import system_principal
from csuhub.store.audited import Entry
from csuhub.walls.model import SPOTLIGHT_LAYOUTS, Base, ScreenState
from csuhub.walls.screens import Change, Screen, Wall, find_spec

_LOGGER = logging.getLogger(__name__)
#: who the rules' changes are audited as
RULES = system_principal("hub")
#: released incidents kept per wall (an open incident rarely lasts past a few hundred)
MAX_RELEASED = 256


class SpotlightRules:
    """The rules' half of :class:`~csuhub.walls.manager.WallManager` (a mixin)."""

    hub: Any
    walls: dict[str, Wall]
    lock: asyncio.Lock
    clock: Callable[[], float]

    def __init__(self) -> None:
        #: the incidents the rules know, as last fired or read
        self._incidents: dict[int, IncidentRef] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # provided by the manager
    async def commit(self, wall: Wall, changes: Any) -> None: ...
    async def _write(self, wall: Wall, changes: Any) -> None: ...
    async def save_waiting(self, wall: Wall, *, announce: bool = True) -> None: ...
    def refresh(self, wall: Wall, screen_id: str) -> None: ...
    def expand(self, cameras: Any) -> tuple[str, ...]: ...

    def follow_incidents(self) -> list[Callable[[], None]]:
        bus = self.hub.bus
        return [
            bus.listen(IncidentOpened, self._on_incident),
            bus.listen(IncidentUpdated, self._on_incident),
            bus.listen(IncidentCameraLinked, self._on_incident),
            bus.listen(IncidentClosed, self._on_closed),
        ]

    async def _on_incident(self, event: IncidentOpened) -> None:
        await self.incident(event.incident)

    async def _on_closed(self, event: IncidentClosed) -> None:
        await self.closed(event.incident)

    def incident_ref(self, incident_id: int | None) -> IncidentRef | None:
        return None if incident_id is None else self._incidents.get(incident_id)

    # -- the rules ----------------------------------------------------------------

    async def incident(self, ref: IncidentRef) -> None:
        """An incident opened or changed: give it a screen, or follow its cameras."""
        async with self.lock:
            if ref.status is IncidentStatus.CLOSED:
                await self._closed(ref)
                return
            self._incidents[ref.id] = ref
            for wall in list(self.walls.values()):
                await self._place(wall, ref)

    async def closed(self, ref: IncidentRef) -> None:
        """An incident closed: hold it, then hand its screens on or revert them."""
        async with self.lock:
            await self._closed(ref)

    async def tick(self, now: float | None = None) -> None:
        """Let go the incidents whose hold or timeout has passed (timers call this)."""
        async with self.lock:
            await self._tick(self.clock() if now is None else now)

    async def _place(self, wall: Wall, ref: IncidentRef) -> None:
        screens = [s for s in wall.screens.values() if s.state.rules.spotlight]
        showing = [s for s in screens if s.state.incident == ref.id]
        # a screen's min_priority and categories: which incidents it takes at all
        screens = [s for s in screens if s.state.rules.accepts(ref)]
        if showing:
            changes = []
            for screen in showing:
                cameras = screen.state.rules.cameras_of(ref).camera_ids
                if screen.state.shown.cameras != cameras and not screen.state.closed:
                    shown = replace(screen.state.shown, cameras=cameras)
                    entry = self._entry("wall.spotlight", wall, screen, ref, follow=True)
                    state = replace(screen.state, shown=shown)
                    changes.append(Change(screen.id, state, "incident", entry))
                else:
                    self.refresh(wall, screen.id)
            await self.commit(wall, changes)
            return
        if not screens:
            return
        released = wall.released.get(ref.id)
        if released is not None:
            if ref.priority <= released:
                return  # let go by a timeout or an operator: stays off this wall
            del wall.released[ref.id]  # more urgent now: it may take a screen again
        target = self._choose(screens, ref)
        if target is None:
            if ref.id not in wall.waiting:
                wall.waiting.append(ref.id)
                await self.save_waiting(wall)
            return
        displaced = target.state.incident
        if displaced is not None and not target.state.closed and displaced not in wall.waiting:
            wall.waiting.append(displaced)
        if ref.id in wall.waiting:
            wall.waiting.remove(ref.id)
        await self.commit(wall, [self._take(wall, target, ref)])

    def _choose(self, screens: list[Screen], ref: IncidentRef) -> Screen | None:
        free = [s for s in screens if not s.state.pinned]
        for screen in free:
            if screen.state.incident is None:
                return screen
        for screen in free:
            if screen.state.closed:
                return screen
        lower = []
        for screen in free:
            shown = self._incidents.get(screen.state.incident or 0)
            priority = shown.priority if shown is not None else Priority.LOW
            opened = shown.opened_at if shown is not None else 0.0
            if priority < ref.priority:
                lower.append((priority, opened, screen.id, screen))
        return min(lower, key=lambda item: item[:3])[3] if lower else None

    def _take(self, wall: Wall, screen: Screen, ref: IncidentRef) -> Change:
        base = screen.state.base
        layout = self._layout_for(wall, screen, ref)
        options = dict(base.options) if layout == base.layout else {}
        timeout = screen.state.rules.timeout
        cameras = screen.state.rules.cameras_of(ref).camera_ids
        state = ScreenState(
            shown=Base(layout, cameras, options),
            pinned=screen.state.pinned,
            incident=ref.id,
            previous=base,
            until=self.clock() + timeout if timeout > 0 else None,
        )
        self._incidents[ref.id] = ref
        entry = self._entry("wall.spotlight", wall, screen, ref, layout=layout)
        return Change(screen.id, state, "incident", entry)

    def _layout_for(self, wall: Wall, screen: Screen, ref: IncidentRef) -> str:
        base = screen.state.base.layout
        default = base if base in SPOTLIGHT_LAYOUTS else "spotlight"
        try:
            answer = self.hub.layout_for(ref, self.wall_ref(wall, screen))
        except Exception:  # the selector passes over failing plugins; this is a backstop
            _LOGGER.exception("layout_for_incident failed for wall %s", wall.id)
            return default
        if isinstance(answer, str) and find_spec(self.hub, answer)[0] is not None:
            return answer
        if answer is not None:
            _LOGGER.warning("layout_for_incident named %r, which no plugin provides", answer)
        return default

    def wall_ref(self, wall: Wall, screen: Screen) -> WallRef:
        """The wall as the ``layout_for_incident`` selector sees it."""
        screens = tuple(
            ScreenRef(
                id=s.id,
                layout=s.state.shown.layout,
                name=s.name,
                cameras=self.expand(s.state.shown.cameras),
                pinned=s.state.pinned,
            )
            for s in wall.screens.values()
        )
        return WallRef(
            id=wall.id,
            screen=next(r for r in screens if r.id == screen.id),
            name=wall.name,
            screens=screens,
            layouts=tuple(self.hub.registry.wall_layouts.names()),
        )

    def release(self, wall: Wall, incident_id: int) -> None:
        """Keep an open incident off this wall's screens until its priority rises
        (stored with the wall's next write; at most ``MAX_RELEASED``, oldest dropped)."""
        ref = self._incidents.get(incident_id)
        wall.released.pop(incident_id, None)
        wall.released[incident_id] = int(ref.priority if ref is not None else Priority.LOW)
        while len(wall.released) > MAX_RELEASED:
            del wall.released[next(iter(wall.released))]

    async def _closed(self, ref: IncidentRef) -> None:
        self._incidents[ref.id] = ref
        for wall in list(self.walls.values()):
            released = wall.released.pop(ref.id, None) is not None
            waited = ref.id in wall.waiting
            if waited:
                wall.waiting.remove(ref.id)
            if released or waited:
                await self.save_waiting(wall, announce=waited)
            for screen in list(wall.screens.values()):
                if screen.state.incident != ref.id or screen.state.closed:
                    continue
                hold = screen.state.rules.hold
                if hold > 0:
                    until = self.clock() + hold
                    state = replace(screen.state, closed=True, until=until)
                    details = {"incident": ref.id, "hold": hold, "until": until}
                    entry = Entry(RULES, "wall.hold", _target(wall, screen), details)
                    await self.commit(wall, [Change(screen.id, state, "hold", entry)])
                else:
                    await self._release(wall, screen)

    async def _release(self, wall: Wall, screen: Screen) -> None:
        """The screen's incident is done: the next waiting one, or what was there before."""
        gone = screen.state.incident
        following = await self._next_waiting(wall, gone, screen)
        if following is not None:
            wall.waiting.remove(following.id)
            await self.commit(wall, [self._take(wall, screen, following)])
            return
        entry = Entry(RULES, "wall.revert", _target(wall, screen), {"incident": gone})
        await self.commit(wall, [Change(screen.id, screen.state.reverted(), "revert", entry)])

    async def _next_waiting(
        self, wall: Wall, gone: int | None, screen: Screen
    ) -> IncidentRef | None:
        """The waiting incident of highest priority (the oldest first) that
        ``screen``'s rules accept; the closed ones leave the list."""
        best: IncidentRef | None = None
        for incident_id in list(wall.waiting):
            # the store, not the last event: an incident closed by the CLI fired none here
            ref = await self._fetch(incident_id) or self._incidents.get(incident_id)
            if ref is None or ref.status is IncidentStatus.CLOSED or incident_id == gone:
                wall.waiting.remove(incident_id)
                continue
            if not screen.state.rules.accepts(ref):
                continue
            if best is None or (-ref.priority, ref.opened_at) < (-best.priority, best.opened_at):
                best = ref
        return best

    async def _still_open(self, incident_id: int) -> bool:
        ref = await self._fetch(incident_id)
        return ref is not None and ref.status is IncidentStatus.OPEN

    async def _fetch(self, incident_id: int) -> IncidentRef | None:
        try:
            found = await self.hub.incidents.get(incident_id)
        except Exception:
            _LOGGER.exception("could not read incident %s for the walls", incident_id)
            return None
        if found is None:
            return None
        ref: IncidentRef = found.to_ref()
        self._incidents[incident_id] = ref
        return ref

    async def _tick(self, now: float) -> None:
        for wall in list(self.walls.values()):
            for screen in list(wall.screens.values()):
                until = screen.state.until
                if screen.state.incident is not None and until is not None and until <= now:
                    if not screen.state.closed:  # a timeout: the incident is still open
                        self.release(wall, screen.state.incident)
                    await self._release(wall, screen)
        self.arm()

    async def resume(self) -> None:
        """At start-up: read the incidents the screens show; those that closed
        while the hub was down are let go as if they had closed now (and leave
        the released set)."""
        for wall in list(self.walls.values()):
            gone = [i for i in wall.released if not await self._still_open(i)]
            for incident_id in gone:
                del wall.released[incident_id]
            if gone:
                await self.save_waiting(wall, announce=False)
            for screen in list(wall.screens.values()):
                incident_id = screen.state.incident
                if incident_id is None:
                    continue
                ref = await self._fetch(incident_id)
                if ref is None:
                    await self._release(wall, screen)
                elif ref.status is IncidentStatus.CLOSED and not screen.state.closed:
                    await self._closed(ref)
                else:
                    self.refresh(wall, screen.id)
        await self._tick(self.clock())

    # -- timers ----------------------------------------------------------------------

    def arm(self) -> None:
        """One timer, for the earliest hold or timeout to end."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        times = [
            s.state.until
            for wall in self.walls.values()
            for s in wall.screens.values()
            if s.state.until is not None and s.state.incident is not None
        ]
        if not times:
            return
        delay = max(0.0, min(times) - self.clock()) + 0.01
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.tick())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def _entry(action: str, wall: Wall, screen: Screen, ref: IncidentRef, **params: Any) -> Entry:
        details = {"incident": ref.id, "priority": str(ref.priority), **params}
        details["cameras"] = list(ref.camera_ids)
        return Entry(RULES, action, _target(wall, screen), details)


def _target(wall: Wall, screen: Screen) -> str:
    return f"wall:{wall.id}/{screen.id}"
