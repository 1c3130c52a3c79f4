"""A screen at run time: its layout object, built from the registered spec, and
the tiles it last computed.

Why failures stop here: a layout is third-party code run on the event loop. A
layout no plugin provides, options its schema refuses, a factory that raises,
or ``tiles()`` raising or answering tiles ``check_tiles`` refuses, all leave
the screen showing what it showed before (or one empty tile with the reason
when it never showed anything) and are reported once as a ``ComponentFailed``
naming the layout's plugin; the hub and the other screens carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from csuhub.events import ComponentFailed
from csuhub.refs import IncidentRef
from csuhub.walls.model import ALIASES, Base, ScreenState, layout_options
from csuhub.walls.tiles import LayoutRequest, SourceKind, Tile, TileSource, WallLayout, check_tiles

if TYPE_CHECKING:
    from csuhub.specs import WallLayoutSpec
    from csuhub.store.audited import Entry

_LOGGER = logging.getLogger(__name__)

#: what a screen shows when its layout never answered
BLANK = (Tile(0.0, 0.0, 1.0, 1.0, TileSource()),)


class LayoutProblem(Exception):
    """A layout could not be built or refused its options (the message says which)."""


def find_spec(hub: Any, name: str) -> tuple[WallLayoutSpec | None, str]:
    """The spec of layout ``name`` (following the alias) and the name it is registered as."""
    registry = hub.registry.wall_layouts
    spec = registry.get(name)
    if spec is None and name in ALIASES:
        return registry.get(ALIASES[name]), ALIASES[name]
    return spec, name


def build_layout(hub: Any, name: str, options: Mapping[str, Any]) -> WallLayout:
    """The layout object for a screen; ``LayoutProblem`` when it cannot be had."""
    spec, registered = find_spec(hub, name)
    if spec is None:
        raise LayoutProblem(f"no plugin provides the wall layout {name!r}")
    try:
        validated = spec.config_schema(layout_options(options))
    except Exception as err:  # vol.Invalid and friends: the options are refused
        raise LayoutProblem(f"layout {registered!r} refuses its options: {err}") from None
    try:
        layout = spec.factory(hub, validated)
    except Exception as err:
        raise LayoutProblem(f"layout {registered!r} could not be built: {err}") from err
    if not isinstance(layout, WallLayout):
        raise LayoutProblem(f"layout {registered!r} built a {type(layout).__name__}, not a layout")
    return layout


def check_options(hub: Any, name: str, options: Mapping[str, Any]) -> None:
    """``LayoutProblem`` unless ``name`` is registered and accepts ``options``."""
    build_layout(hub, name, options)


def with_pushes(tiles: list[Tile], pushed: Mapping[int, str]) -> list[Tile]:
    """The operators' pushes over the layout's tiles (a push past the last tile is dropped)."""
    if not pushed:
        return tiles
    out = list(tiles)
    for index, camera in pushed.items():
        if 0 <= index < len(out):
            source = TileSource(SourceKind.CAMERA, camera=camera, stream=out[index].source.stream)
            out[index] = replace(out[index], source=source)
    return out


@dataclass
class Screen:
    """One screen's layout object and tiles (the state itself is ``ScreenState``)."""

    wall: str
    id: str
    name: str
    #: the fingerprint of the site file's declaration
    declared: str
    state: ScreenState
    tiles: tuple[Tile, ...] = BLANK
    #: why the tiles are not the layout's answer, or None
    problem: str | None = None
    _built: tuple[str, str] | None = None
    _layout: WallLayout | None = None
    _reported: set[str] = field(default_factory=set)

    def compute(self, hub: Any, shown: Base, incident: IncidentRef | None) -> tuple[Tile, ...]:
        """Ask the layout for the tiles of ``shown``; on failure keep the previous ones."""
        key = (shown.layout, repr(sorted(shown.options.items())))
        try:
            if self._built != key or self._layout is None:
                self._layout = None
                self._layout = build_layout(hub, shown.layout, shown.options)
                self._built = key
            request = LayoutRequest(self.wall, self.id, tuple(shown.cameras), incident)
            answer = check_tiles(self._layout.tiles(request))
        except Exception as err:  # a third party's code: never the hub's failure
            self._failed(hub, shown.layout, err)
            return self.tiles
        self.tiles = tuple(with_pushes(answer, shown.pushed))
        self.problem = None
        return self.tiles

    def _failed(self, hub: Any, layout: str, err: Exception) -> None:
        self.problem = str(err)[:300] or type(err).__name__
        if self.problem in self._reported:
            return
        self._reported.add(self.problem)
        spec_name = find_spec(hub, layout)[1]
        plugin = hub.registry.wall_layouts.plugin_of(spec_name) or "-"
        if isinstance(err, LayoutProblem) and err.__cause__ is None:
            _LOGGER.warning("wall %s screen %s: %s", self.wall, self.id, self.problem)
        else:
            _LOGGER.error(
                "wall %s screen %s: layout %s (plugin %s) failed",
                self.wall,
                self.id,
                layout,
                plugin,
                exc_info=err,
            )
        hub.bus.fire(
            ComponentFailed(
                kind="wall_layout",
                component=f"{self.wall}/{self.id}:{layout}",
                plugin=plugin,
                reason=self.problem,
            )
        )


class WallError(Exception):
    """An operator's change refused: ``kind`` is ``invalid``, ``not_found`` or ``conflict``."""

    def __init__(self, message: str, kind: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


@dataclass
class Wall:
    id: str
    name: str
    version: int = 0
    #: in the site file's order
    screens: dict[str, Screen] = field(default_factory=dict)
    #: incidents waiting for a spotlight screen of this wall
    waiting: list[int] = field(default_factory=list)
    #: incidents an operator or a timeout took off a screen of this wall, with the
    #: priority they had then: they take no screen again unless it rises
    released: dict[int, int] = field(default_factory=dict)

    def screen(self, screen_id: str) -> Screen:
        found = self.screens.get(screen_id)
        if found is None:
            raise WallError(f"wall {self.id!r} has no screen {screen_id!r}", "not_found")
        return found


@dataclass(frozen=True, slots=True)
class Change:
    """One screen's new state, why, and its audit entry (None: not audited)."""

    screen: str
    state: ScreenState
    cause: str
    entry: Entry | None = None
