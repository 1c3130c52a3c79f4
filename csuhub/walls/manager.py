"""The wall manager (``hub.walls``): the walls of the site file, what their
screens show now, the operators' changes, and the state a restart restores.

Every change goes the same way (:meth:`WallManager.commit`): the wall's
version goes up, the changed screens and their audit entries are written in
one transaction, the tiles are computed again, then one ``WallChanged`` per
screen is fired. Changes are serialised by one lock, so an operator's push
and an incident's spotlight never interleave half-way. The spotlight rules
are :class:`~csuhub.walls.rules.SpotlightRules`, mixed in.

Restore: a screen's stored state is used again at start-up when the site
file still declares the screen as it did when the state was stored (the
fingerprint ``declared``); when the declaration changed, the site file wins
and the screen starts again from it (a ``WallChanged`` with cause ``site``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from csuhub.events import ConfigReloaded, WallChanged
from csuhub.refs import IncidentRef
from csuhub.security.permissions import Principal, system_principal
from csuhub.store.audited import Entry
from csuhub.store.walls import ScreenRow, WallStore
from csuhub.walls.groups import Placement, expand, is_selector, placements
from csuhub.walls.model import (
    MAX_CAMERAS,
    Base,
    ScreenState,
    declared,
    dumps,
    rule_options,
    rules_of,
)
from csuhub.walls.rules import SpotlightRules
from csuhub.walls.screens import Change, LayoutProblem, Screen, Wall, WallError, check_options
from csuhub.walls.tiles import SourceKind, Tile

_LOGGER = logging.getLogger(__name__)
#: who the site file's changes are audited as
HUB = system_principal("hub")


class WallManager(SpotlightRules):
    """``hub.walls``."""

    def __init__(self, hub: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.store = WallStore(hub.store)
        self.clock = clock
        self.walls: dict[str, Wall] = {}
        #: where each camera is, for the screens' group and district selectors
        self.placements: dict[str, Placement] = {}
        self.lock = asyncio.Lock()
        self._unsub: list[Callable[[], None]] = []
        SpotlightRules.__init__(self)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Read the stored state, apply the site file, follow incidents and reloads."""
        async with self.lock:
            self.placements = await placements(self.hub)
            await self._sync(await self.store.load())
            await self.resume()
        self._unsub.append(self.hub.bus.listen(ConfigReloaded, self._on_reload))
        self._unsub.extend(self.follow_incidents())

    async def stop(self) -> None:
        for undo in self._unsub:
            undo()
        self._unsub.clear()
        await self.stop_timers()

    async def _on_reload(self, event: ConfigReloaded) -> None:
        async with self.lock:
            self.placements = await placements(self.hub)
            await self._sync(await self.store.load())  # every screen computed again

    async def _sync(self, stored: Mapping[str, Mapping[str, Any]]) -> None:
        """Make the walls the site file's: restore each screen whose declaration is
        unchanged, reset the others, forget what the site no longer declares."""
        walls: dict[str, Wall] = {}
        for settings in self.hub.config.settings.walls:
            kept = stored.get(settings.id) or {}
            old = self.walls.get(settings.id)
            wall = Wall(
                settings.id,
                settings.name or settings.id,
                max(int(kept.get("version", 0)), old.version if old else 0),
                waiting=[int(i) for i in kept.get("waiting", []) if isinstance(i, int)],
                released=dict(kept.get("released") or {}),
            )
            changes: list[Change] = []
            for screen in settings.screens:
                mark = declared(screen.layout, screen.cameras, screen.options)
                fresh = ScreenState(Base(screen.layout, screen.cameras, dict(screen.options)))
                row = (kept.get("screens") or {}).get(screen.id)
                state = _restored(row, mark)
                if state is None:
                    state = fresh
                    params = {"cause": "site", "layout": screen.layout, "cameras": screen.cameras}
                    entry = Entry(HUB, "wall.set", _target(settings.id, screen.id), params)
                    changes.append(
                        Change(screen.id, fresh, "site", entry)
                        if row
                        else Change(screen.id, fresh, "declared")
                    )
                current = old.screens.get(screen.id) if old else None
                built = Screen(settings.id, screen.id, screen.name or screen.id, mark, state)
                if current is not None:  # keep the layout object and last tiles
                    built.tiles, built._built, built._layout = (
                        current.tiles,
                        current._built,
                        current._layout,
                    )
                wall.screens[screen.id] = built
            walls[wall.id] = wall
            self.walls[wall.id] = wall
            await self.store.forget(wall.id, list(wall.screens))
            for screen_id in wall.screens:
                self.refresh(wall, screen_id)
            site = [c for c in changes if c.cause == "site"]
            if site:
                await self.commit(wall, site)
            elif changes:  # a first start: stored, nothing changed
                await self._write(wall, changes)
        for gone in set(stored) - set(walls):
            await self.store.forget(gone)
        self.walls = walls

    # -- reading -------------------------------------------------------------------

    def wall(self, wall_id: str) -> Wall:
        found = self.walls.get(wall_id)
        if found is None:
            raise WallError(f"no wall {wall_id!r}", "not_found")
        return found

    def cameras_on(self, wall_ids: Iterable[str]) -> frozenset[str]:
        """Every camera the walls' tiles show or cycle now (a camera or snapshot
        tile's, a carousel's list, an incident slot's camera, a push): what a
        kiosk of those walls may see (its ``wall:<id>`` scope). Not the cameras
        a screen was given but shows no tile of, nor an incident's beyond its
        slots, nor what a spotlighted screen goes back to."""
        found: set[str] = set()
        for wall_id in wall_ids:
            wall = self.walls.get(wall_id)
            if wall is None:
                continue
            for screen in wall.screens.values():
                found.update(tile_cameras(screen.tiles, self.shown_incident(screen)))
        return frozenset(found)

    def refresh(self, wall: Wall, screen_id: str) -> None:
        """Compute a screen's tiles again from its state."""
        screen = wall.screens[screen_id]
        shown = screen.state.shown
        if any(is_selector(c) for c in shown.cameras):
            shown = replace(shown, cameras=self.expand(shown.cameras))
        screen.compute(self.hub, shown, self.shown_incident(screen))

    def expand(self, cameras: Sequence[str]) -> tuple[str, ...]:
        """A screen's cameras with its ``group:``/``district:`` selectors resolved."""
        return expand(cameras, self.placements)

    def shown_incident(self, screen: Screen) -> IncidentRef | None:
        """The incident a screen spotlights, with the cameras the screen's rules keep."""
        incident = self.incident_ref(screen.state.incident)
        return None if incident is None else screen.state.rules.cameras_of(incident)

    # -- writing -------------------------------------------------------------------

    async def commit(self, wall: Wall, changes: Sequence[Change]) -> None:
        """Store the changes with their entries under the wall's next version, then
        compute the tiles and fire one ``WallChanged`` per screen."""
        if not changes:
            return
        wall.version += 1
        await self._write(wall, changes)
        for change in changes:
            self.refresh(wall, change.screen)
        for change in changes:
            self.hub.bus.fire(
                WallChanged(
                    wall=wall.id, screen=change.screen, version=wall.version, cause=change.cause
                )
            )
        self.arm()

    async def _write(self, wall: Wall, changes: Sequence[Change]) -> None:
        rows = []
        for change in changes:
            screen = wall.screens[change.screen]
            screen.state = change.state
            rows.append(ScreenRow(change.screen, screen.declared, dumps(change.state.as_dict())))
        entries = [c.entry for c in changes if c.entry is not None]
        await self.store.save(wall.id, wall.version, wall.waiting, rows, entries, wall.released)

    async def save_waiting(self, wall: Wall, *, announce: bool = True) -> None:
        """The waiting list (and released set) alone. A change of the waiting list
        is the wall's next version and a ``WallChanged`` with cause ``waiting`` and
        no screen (``announce``); the released set alone is neither."""
        if announce:
            wall.version += 1
        await self.store.save(wall.id, wall.version, wall.waiting, [], (), wall.released)
        if announce:
            self.hub.bus.fire(
                WallChanged(wall=wall.id, screen="", version=wall.version, cause="waiting")
            )

    # -- operators' changes (wall.edit) ---------------------------------------------

    async def set_screen(
        self,
        wall_id: str,
        screen_id: str,
        who: Principal,
        *,
        layout: str | None = None,
        cameras: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
        pinned: bool | None = None,
    ) -> Wall:
        """Give a screen a layout, cameras and options, or pin or unpin it. A new
        layout, cameras or options end an incident's hold on the screen (the
        operator's choice wins); pinning keeps incidents off it from now on."""
        async with self.lock:
            wall = self.wall(wall_id)
            state = wall.screen(screen_id).state
            params: dict[str, Any] = {}
            action = "wall.set"
            if layout is not None or cameras is not None or options is not None:
                base = state.base
                name = layout if layout is not None else base.layout
                if options is None:  # a new layout: its defaults, the screen's rules kept
                    options = base.options if name == base.layout else rule_options(base.options)
                chosen = tuple(cameras) if cameras is not None else base.cameras
                _check_screen(self.hub, name, chosen, options)
                if state.incident is not None and not state.closed:
                    self.release(wall, state.incident)  # the operator's choice stands
                state = ScreenState(Base(name, chosen, dict(options)), pinned=state.pinned)
                params.update(layout=name, cameras=list(chosen), options=dict(options))
            elif pinned is None:
                raise WallError("nothing to change: give layout, cameras, options or pinned")
            else:
                action = "wall.pin" if pinned else "wall.unpin"
            if pinned is not None:
                state = state.with_pinned(pinned)
                params["pinned"] = pinned
            entry = Entry(who, action, _target(wall_id, screen_id), params)
            await self.commit(wall, [Change(screen_id, state, "operator", entry)])
            return wall

    async def push(
        self,
        wall_id: str,
        camera: str,
        who: Principal,
        *,
        screen_id: str | None = None,
        tile: int | None = None,
    ) -> tuple[Wall, str, int]:
        """Put a camera on a tile: the named one, or the screen's first empty tile;
        with no screen named, the first screen with an empty tile that is neither
        pinned nor spotlighting an incident. Returns the wall, screen and tile."""
        async with self.lock:
            wall = self.wall(wall_id)
            if screen_id is None:
                screen_id, tile = _free_tile(wall)
            screen = wall.screen(screen_id)
            tiles = screen.tiles
            if tile is None:
                free = [i for i, t in enumerate(tiles) if t.source.kind is SourceKind.EMPTY]
                if not free:
                    raise WallError(f"screen {screen_id!r} has no empty tile", "conflict")
                tile = free[0]
            if not 0 <= tile < len(tiles):
                raise WallError(f"screen {screen_id!r} has tiles 0 to {len(tiles) - 1}", "invalid")
            shown = screen.state.shown
            pushed = {**shown.pushed, tile: camera}
            state = replace(screen.state, shown=replace(shown, pushed=pushed))
            params = {"camera": camera, "tile": tile}
            entry = Entry(who, "wall.push", _target(wall_id, screen_id), params)
            await self.commit(wall, [Change(screen_id, state, "operator", entry)])
            return wall, screen_id, tile


def tile_cameras(tiles: Iterable[Tile], incident: IncidentRef | None) -> set[str]:
    """The cameras ``tiles`` show, an incident slot resolved against ``incident``."""
    found: set[str] = set()
    ids = incident.camera_ids if incident is not None else ()
    for tile in tiles:
        source = tile.source
        if source.camera is not None:
            found.add(source.camera)
        found.update(source.cameras)
        if source.kind is SourceKind.INCIDENT and source.slot < len(ids):
            found.add(ids[source.slot])
    return found


def _restored(row: Mapping[str, Any] | None, mark: str) -> ScreenState | None:
    if not row or row.get("declared") != mark or not isinstance(row.get("state"), dict):
        return None
    try:
        return ScreenState.from_dict(row["state"])
    except (KeyError, TypeError, ValueError):
        _LOGGER.warning("a stored wall screen state is unreadable; the site file's is used")
        return None


def _check_screen(
    hub: Any, layout: str, cameras: Sequence[str], options: Mapping[str, Any]
) -> None:
    if len(cameras) > MAX_CAMERAS:
        raise WallError(f"at most {MAX_CAMERAS} cameras per screen", field="cameras")
    try:
        rules_of(layout, options)
    except ValueError as err:
        raise WallError(str(err), field="options") from None
    try:
        check_options(hub, layout, options)
    except LayoutProblem as err:
        raise WallError(
            str(err), field="layout" if "no plugin" in str(err) else "options"
        ) from None


def _free_tile(wall: Wall) -> tuple[str, int]:
    for screen in wall.screens.values():
        if screen.state.pinned or screen.state.incident is not None:
            continue
        for index, tile in enumerate(screen.tiles):
            if tile.source.kind is SourceKind.EMPTY and screen.problem is None:
                return screen.id, index
    raise WallError(f"wall {wall.id!r} has no empty tile on a free screen", "conflict")


def _target(wall: str, screen: str) -> str:
    return f"wall:{wall}/{screen}"
