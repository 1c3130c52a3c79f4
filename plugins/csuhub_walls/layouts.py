"""The bundled layouts: which source each tile of an arrangement shows.

Every layout follows the same two rules, so a screen behaves alike whatever
layout the ``layout_for_incident`` selector gives it:

- **An incident replaces the screen's cameras.** With ``request.incident``
  set, the tiles show the incident's cameras as ``incident`` slots, nearest
  first in the layout's order (the big tile first), at most ``tiles`` of them
  when that option is given; the wall manager resolves a slot to the camera.
  Slots never rotate: the nearest cameras stay put while the incident lasts.
- **Each camera at most once.** A camera listed twice (the site file does not
  forbid it) is shown once, at its first place; an incident linking the same
  camera twice gets one slot, the first. Cameras beyond the tiles rotate when
  ``dwell`` is set: tile *i* of *n* cycles through cameras *i*, *i + n*,
  *i + 2n*... (so all tiles turn a "page" together when the split is even),
  and the shares are disjoint, so no camera shows twice at any moment; without
  ``dwell`` the cameras beyond the tiles are not shown.

Layouts keep their options and nothing else: ``tiles()`` is a pure function
of the request, as the contract asks (csuhub.walls.tiles).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from csuhub.api import IncidentRef, LayoutRequest, SourceKind, Tile, TileSource

from . import geometry
from . import options as opts
from .geometry import MAX_SIDE, Arrangement

EMPTY = TileSource()


def unique(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, first place kept."""
    return list(dict.fromkeys(ids))


def incident_slots(incident: IncidentRef | None, cap: int) -> list[int]:
    """The slots (indexes into ``incident.cameras``) to show: one per distinct
    camera, nearest first, at most ``cap``."""
    if incident is None:
        return []
    seen: set[str] = set()
    slots = []
    for index, camera in enumerate(incident.cameras):
        if camera.id not in seen:
            seen.add(camera.id)
            slots.append(index)
    return slots[: max(cap, 0)]


def camera_sources(
    cameras: Sequence[str],
    count: int,
    dwell: float | None,
    stream: str,
    snapshot: float | None = None,
) -> list[TileSource]:
    """``count`` sources for ``cameras`` (already without repeats), rotating the
    surplus when ``dwell`` is set (see the module docstring); empties pad. With
    ``snapshot`` (seconds), a tile of one camera is a snapshot tile."""
    if count <= 0:
        return []
    if len(cameras) <= count or dwell is None:
        shares: list[Sequence[str]] = [[c] for c in cameras[:count]]
    else:
        shares = [cameras[i::count] for i in range(count)]
    sources = [
        (
            TileSource(SourceKind.SNAPSHOT, camera=share[0], stream=stream, refresh=snapshot)
            if snapshot
            else TileSource(SourceKind.CAMERA, camera=share[0], stream=stream)
        )
        if len(share) == 1
        else TileSource(SourceKind.CAROUSEL, stream=stream, cameras=tuple(share), dwell=dwell or 0)
        for share in shares
    ]
    return sources + [EMPTY] * (count - len(sources))


def slot_sources(slots: Sequence[int], count: int, stream: str) -> list[TileSource]:
    sources = [TileSource(SourceKind.INCIDENT, stream=stream, slot=s) for s in slots[:count]]
    return sources + [EMPTY] * (count - len(sources))


def place(
    arrangement: Arrangement, sources: Sequence[TileSource], big_stream: str | None = None
) -> list[Tile]:
    """Tiles of ``arrangement`` with ``sources`` in cell order; the big cell's
    source takes ``big_stream`` when given (empties stay as they are)."""
    tiles = []
    for index, source in enumerate(sources):
        if index == 0 and arrangement.big and big_stream and source.kind is not SourceKind.EMPTY:
            source = TileSource(
                source.kind,
                camera=source.camera,
                stream=big_stream,
                cameras=source.cameras,
                dwell=source.dwell,
                slot=source.slot,
                refresh=source.refresh,
            )
        tiles.append(arrangement.tile(index, source))
    return tiles


def grid_shape(options: dict[str, Any], count: int) -> tuple[int, int]:
    """``columns``x``rows`` as given; a missing side derived from ``count`` (the
    cameras, or the incident's slots, to show), a near-square grid when both
    are missing."""
    columns, rows = options.get("columns"), options.get("rows")
    if columns and rows:
        return columns, rows
    if columns:
        return columns, min(MAX_SIDE, max(1, -(-count // columns)))
    if rows:
        return min(MAX_SIDE, max(1, -(-count // rows))), rows
    return geometry.grid_for(count)


class Layout:
    """What the bundled layouts share: options kept, the hub ignored (a layout
    needs nothing of it, and keeping it would invite state).

    The hub validates ``options`` with the spec's schema before calling the
    factory; validating again here (the schemas are idempotent) gives a layout
    built by hand, in a test or a script, the same defaults and errors."""

    schema: Any = opts.GRID_SCHEMA

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        options = self.schema(dict(options))
        self.options = options
        self.dwell: float | None = options.get("dwell")
        self.stream: str = options.get("stream", "sub")
        self.big_stream: str = options.get("big_stream", self.stream)
        #: camera tiles as JPEGs refreshed this often (seconds), not live video
        self.snapshot: float | None = options.get("snapshot")
        #: how many incident cameras at most (``tiles``); all the layout holds otherwise
        self.cap: int = options.get("tiles", geometry.MAX_SIDE * geometry.MAX_SIDE)

    def tiles(self, request: LayoutRequest) -> list[Tile]:  # pragma: no cover - abstract
        raise NotImplementedError


class Grid(Layout):
    """``columns``x``rows`` equal tiles, row-major."""

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        if request.incident is not None:
            slots = incident_slots(request.incident, self.cap)
            arrangement = geometry.grid(*grid_shape(self.options, len(slots)))
            return place(arrangement, slot_sources(slots, len(arrangement), self.stream))
        cameras = unique(request.cameras)
        arrangement = geometry.grid(*grid_shape(self.options, len(cameras)))
        return place(
            arrangement,
            camera_sources(cameras, len(arrangement), self.dwell, self.stream, self.snapshot),
        )


class Carousel(Grid):
    """A grid (1x1 by default) whose tiles cycle through the cameras, ``dwell``
    each (10 s by default). The camera list is the screen's: a group is
    resolved by the wall manager before it asks, so the layout stays pure."""

    schema = opts.CAROUSEL_SCHEMA


class OnePlusN(Layout):
    """One big tile and ``n`` small ones (``geometry.one_plus``). The big tile
    shows the first camera, always; the others share the small tiles, rotating
    with ``dwell``."""

    def __init__(self, hub: Any, options: dict[str, Any], n: int | None = None) -> None:
        self.schema = opts.one_plus_schema(n)
        super().__init__(hub, options)
        self.arrangement = geometry.one_plus(n if n is not None else self.options["n"])

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        count = len(self.arrangement)
        if request.incident is not None:
            sources = slot_sources(incident_slots(request.incident, self.cap), count, self.stream)
        else:
            cameras = unique(request.cameras)
            first = camera_sources(cameras[:1], 1, None, self.stream, self.snapshot)
            sources = first + camera_sources(
                cameras[1:], count - 1, self.dwell, self.stream, self.snapshot
            )
        return place(self.arrangement, sources, self.big_stream)


def one_plus_factory(n: int) -> Any:
    def factory(hub: Any, options: dict[str, Any]) -> OnePlusN:
        return OnePlusN(hub, options, n)

    factory.__name__ = f"one_plus_{n}"
    return factory


class Spotlight(Grid):
    """An incident's nearest cameras, largest first (``geometry.spotlight``),
    ``tiles`` at most (4 by default); an incident with no camera yet is one
    empty tile. With no incident, the screen's own (idle) cameras as a grid.
    ``radius_m`` and ``hold`` are the wall rules' and are only validated here."""

    schema = opts.SPOTLIGHT_SCHEMA

    def tiles(self, request: LayoutRequest) -> list[Tile]:
        if request.incident is None:
            return super().tiles(request)
        slots = incident_slots(request.incident, self.cap)
        if not slots:
            return [Tile(0.0, 0.0, 1.0, 1.0, EMPTY)]
        arrangement = geometry.spotlight(len(slots))
        return place(
            arrangement, slot_sources(slots, len(arrangement), self.stream), self.big_stream
        )
