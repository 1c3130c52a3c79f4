"""What a privacy mask is, and the one parser of masks sent from outside.

A mask is a polygon in coordinates normalised to the image (0..1 on both
axes, origin top left), so the same mask covers the same place at every
resolution the camera sends (main stream, sub-stream, snapshot). The site
file declares masks (validated by ``csuhub.config.validators.polygon``); the
panel draws others through the API, validated here with the same rules and
bounds, because a request body is hostile until proven otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: API-drawn masks per camera (the site file has its own schema)
MAX_MASKS = 32
#: corners of one polygon: enough for any window or garden, cheap to rasterise
MAX_POINTS = 64
MAX_NAME = 100
#: a polygon smaller than this (in image fractions, about one pixel of 1080p)
#: masks nothing and is almost certainly a slip of the mouse
MIN_AREA = 1e-6

Point = tuple[float, float]
Polygon = tuple[Point, ...]


class MaskError(ValueError):
    """A mask was refused; ``field`` says where (``masks.2.polygon.1``)."""

    def __init__(self, message: str, field: str = "masks") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Mask:
    """One mask in force on a camera, and where it comes from (evidence)."""

    name: str
    polygon: Polygon
    #: "site" (declared in the site file) or "api" (drawn in the panel)
    source: str
    #: the store's row for API-drawn masks
    id: int | None = None
    created_by: str | None = None
    created_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "polygon": [list(p) for p in self.polygon],
            "source": self.source,
        }
        if self.id is not None:
            data |= {"id": self.id, "created_by": self.created_by, "created_at": self.created_at}
        return data


def polygon_area(polygon: Polygon) -> float:
    """The shoelace area (positive whatever the winding)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def parse_polygon(value: Any, field: str) -> Polygon:
    """At least 3 and at most ``MAX_POINTS`` points ``[x, y]``, each a finite
    number in 0..1, enclosing some area."""
    if not isinstance(value, list):
        raise MaskError("a polygon is a list of points [x, y]", field)
    if not 3 <= len(value) <= MAX_POINTS:
        raise MaskError(f"a polygon has 3 to {MAX_POINTS} points", field)
    points: list[Point] = []
    for index, point in enumerate(value):
        where = f"{field}.{index}"
        if not isinstance(point, list) or len(point) != 2:
            raise MaskError("each point is [x, y]", where)
        coords = []
        for c in point:
            if isinstance(c, bool) or not isinstance(c, int | float):
                raise MaskError("coordinates are numbers", where)
            f = float(c)
            if not math.isfinite(f) or not 0.0 <= f <= 1.0:
                raise MaskError("coordinates are fractions of the image, between 0 and 1", where)
            coords.append(f)
        points.append((coords[0], coords[1]))
    polygon = tuple(points)
    if polygon_area(polygon) < MIN_AREA:
        raise MaskError("the polygon encloses no area", field)
    return polygon


def parse_name(value: Any, field: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise MaskError("a mask's name is text", field)
    name = value.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise MaskError(f"a mask's name is 1 to {MAX_NAME} printable characters", field)
    return name


def parse_masks(body: Any) -> list[tuple[str, Polygon]]:
    """The masks of a ``PUT /api/cameras/{id}/masks`` body: ``{"masks": [{"name":
    ..., "polygon": [[x, y], ...]}, ...]}``, names unique (they are what the
    manifest and the audit cite). An empty list removes every drawn mask."""
    if not isinstance(body, dict) or set(body) - {"masks"} or "masks" not in body:
        raise MaskError('the body is {"masks": [...]}', "masks")
    items = body["masks"]
    if not isinstance(items, list):
        raise MaskError("masks is a list", "masks")
    if len(items) > MAX_MASKS:
        raise MaskError(f"at most {MAX_MASKS} masks per camera", "masks")
    parsed: list[tuple[str, Polygon]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        field = f"masks.{index}"
        if not isinstance(item, dict) or "polygon" not in item or set(item) - {"name", "polygon"}:
            raise MaskError('each mask is {"name": ..., "polygon": [[x, y], ...]}', field)
        name = parse_name(item.get("name"), f"{field}.name", f"mask-{index + 1}")
        if name in seen:
            raise MaskError(f"two masks are named {name!r}", f"{field}.name")
        seen.add(name)
        parsed.append((name, parse_polygon(item["polygon"], f"{field}.polygon")))
    return parsed


def site_masks(cameras: Iterable[Any], camera_id: str) -> list[Mask]:
    """The masks the site file declares for ``camera_id`` (``CameraSettings``)."""
    found: list[Mask] = []
    for camera in cameras:
        if camera.id != camera_id:
            continue
        for index, mask in enumerate(camera.privacy_masks):
            found.append(
                Mask(
                    name=mask.name or f"site-{index + 1}",
                    polygon=tuple((float(x), float(y)) for x, y in mask.polygon),
                    source="site",
                )
            )
    return found


def polygons_of(masks: Iterable[Mask]) -> tuple[Polygon, ...]:
    """The polygons alone, hashable: the rasteriser's cache key."""
    return tuple(m.polygon for m in masks)
