"""What a wall layout answers: tiles, each with its place on the screen and its
source. The layout-plugin contract (``register_wall_layouts``).

A layout is a pure function of what the screen was given (its cameras, its
options, the incident it spotlights): it places tiles and assigns sources, and
the wall manager resolves them (an incident slot becomes the incident's n-th
nearest camera, a carousel its current camera) and pushes the result to the
kiosks. Keeping layouts pure is what lets them be third-party plugins and be
tested without a hub, a browser or a camera.

Geometry is in fractions of the screen (0..1, origin top-left), so a layout
does not know the kiosk's resolution; tiles must lie within the screen and
must not overlap (checked by :func:`check_tiles`, which the manager runs on
every answer, so a faulty plugin fails loudly in its own tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from csuhub.refs import IncidentRef

__all__ = ["LayoutRequest", "SourceKind", "Tile", "TileSource", "WallLayout", "check_tiles"]

#: a screen with more tiles than this is refused (a 1+12 has 13)
MAX_TILES = 64
STREAMS = ("main", "sub")


class SourceKind(StrEnum):
    CAMERA = "camera"
    #: cycles through ``cameras``, ``dwell`` seconds each
    CAROUSEL = "carousel"
    #: the ``slot``-th nearest camera of the incident the screen spotlights
    INCIDENT = "incident"
    EMPTY = "empty"
    #: ``camera`` as a still JPEG refreshed every ``refresh`` seconds (for tiles
    #: that need no motion: cheaper than live video for the hub and the kiosk)
    SNAPSHOT = "snapshot"


#: the kinds whose tile names one camera
SINGLE = (SourceKind.CAMERA, SourceKind.SNAPSHOT)
#: a snapshot tile's refresh bounds, seconds
REFRESH_MIN, REFRESH_MAX = 1.0, 3600.0


@dataclass(frozen=True, slots=True)
class TileSource:
    kind: SourceKind = SourceKind.EMPTY
    #: CAMERA: the camera id
    camera: str | None = None
    #: which stream of the camera: tiles prefer the sub-stream
    stream: str = "sub"
    #: CAROUSEL: the cameras in turn
    cameras: tuple[str, ...] = ()
    #: CAROUSEL: seconds per camera
    dwell: float = 0.0
    #: INCIDENT: 0 is the nearest camera
    slot: int = 0
    #: SNAPSHOT: seconds between two pictures (1 to 3600); 0 for the other kinds
    refresh: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, SourceKind):
            raise TypeError(f"kind must be a SourceKind, not {self.kind!r}")
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, not {self.stream!r}")
        if self.kind in SINGLE and not (isinstance(self.camera, str) and self.camera):
            raise ValueError(f"a {self.kind} tile names its camera")
        if self.kind not in SINGLE and self.camera is not None:
            raise ValueError(f"a {self.kind} tile names no single camera")
        if isinstance(self.refresh, bool) or not isinstance(self.refresh, int | float):
            raise TypeError("refresh must be a number of seconds")
        if self.kind is SourceKind.SNAPSHOT:
            if not (math.isfinite(self.refresh) and REFRESH_MIN <= self.refresh <= REFRESH_MAX):
                raise ValueError("a snapshot tile's refresh is 1 s to 1 h")
        elif self.refresh != 0:
            raise ValueError(f"a {self.kind} tile has no refresh")
        if not isinstance(self.cameras, tuple) or not all(
            isinstance(c, str) and c for c in self.cameras
        ):
            raise TypeError("cameras must be a tuple of camera ids")
        if self.kind is SourceKind.CAROUSEL:
            if not self.cameras:
                raise ValueError("a carousel needs at least one camera")
            if not (math.isfinite(self.dwell) and 1.0 <= self.dwell <= 3600.0):
                raise ValueError("a carousel's dwell is 1 s to 1 h")
        elif self.cameras:
            raise ValueError(f"a {self.kind} tile has no camera list")
        if isinstance(self.slot, bool) or not isinstance(self.slot, int) or self.slot < 0:
            raise ValueError("slot must be a non-negative int")


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: where (fractions of the screen) and what."""

    x: float
    y: float
    w: float
    h: float
    source: TileSource = field(default_factory=TileSource)

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
        if self.w <= 0 or self.h <= 0:
            raise ValueError("a tile has a positive width and height")
        eps = 1e-9
        if self.x < -eps or self.y < -eps or self.x + self.w > 1 + eps or self.y + self.h > 1 + eps:
            raise ValueError(f"tile ({self.x}, {self.y}, {self.w}, {self.h}) leaves the screen")
        if not isinstance(self.source, TileSource):
            raise TypeError("source must be a TileSource")


@dataclass(frozen=True, slots=True)
class LayoutRequest:
    """What a screen asks its layout to arrange."""

    #: the wall and screen ids
    wall: str
    screen: str
    #: the cameras the screen was given (site file or operator), in order
    cameras: tuple[str, ...] = ()
    #: the incident the screen spotlights now, nearest cameras first; None otherwise
    incident: IncidentRef | None = None


@runtime_checkable
class WallLayout(Protocol):
    """``WallLayoutSpec.factory(hub, options)`` returns one per screen that uses
    it, ``options`` being the screen's ``options`` validated by the spec's
    ``config_schema``."""

    def tiles(self, request: LayoutRequest) -> list[Tile]: ...


def check_tiles(tiles: Sequence[Tile]) -> list[Tile]:
    """``tiles`` if they make a valid screen: at most ``MAX_TILES`` tiles,
    none overlapping another. Raises ``ValueError`` naming the fault."""
    tiles = list(tiles)
    if len(tiles) > MAX_TILES:
        raise ValueError(f"{len(tiles)} tiles: at most {MAX_TILES}")
    eps = 1e-9
    for i, a in enumerate(tiles):
        if not isinstance(a, Tile):
            raise TypeError(f"tile {i} is a {type(a).__name__}, not a Tile")
        for j in range(i):
            b = tiles[j]
            if (
                a.x < b.x + b.w - eps
                and b.x < a.x + a.w - eps
                and a.y < b.y + b.h - eps
                and b.y < a.y + a.h - eps
            ):
                raise ValueError(f"tiles {j} and {i} overlap")
    return tiles


def describe_tile(tile: Tile) -> Mapping[str, Any]:
    """A tile as JSON (the walls API and the kiosks)."""
    s = tile.source
    return {
        "x": tile.x,
        "y": tile.y,
        "w": tile.w,
        "h": tile.h,
        "source": {
            "kind": str(s.kind),
            "camera": s.camera,
            "stream": s.stream,
            "cameras": list(s.cameras),
            "dwell": s.dwell,
            "slot": s.slot,
            "refresh": s.refresh,
        },
    }
