"""The masks as an image: a PGM (P5) the size of the video, 255 where masked.

Why a picture and not ffmpeg expressions: ``geq`` evaluates an expression per
pixel per frame (slow, and polygons are awkward in it), ``drawbox`` knows only
rectangles. A mask image is computed once per (masks, resolution), cached, and
ffmpeg merely composites it (``csuhub.masks.ffmpeg``).

How it is drawn: a scanline fill in pure Python, spans written with bytearray
slices. It errs on the side of privacy: a pixel any part of which a polygon
touches is masked, and every span is widened to whole 2x2 blocks, because the
video is 4:2:0 (one chroma sample per 2x2 pixels): a block half inside the
mask would otherwise carry the colour of what it hides. Each pair of rows is
sampled at its top, middle and bottom lines, and the outline's own extent in
those rows is masked too, so a sharp corner or a thin sliver is not missed
between lines.
Polygons overlap as a union; within one polygon, the even-odd rule applies.
"""

from __future__ import annotations

import math
from functools import lru_cache

from csuhub.masks.model import Polygon

#: 1080p entries are 2 MB; a hub shows few distinct (masks, resolution) pairs
CACHE_SIZE = 16
MAX_SIDE = 16384


def pgm(width: int, height: int, pixels: bytes | bytearray) -> bytes:
    return b"P5\n%d %d\n255\n" % (width, height) + bytes(pixels)


@lru_cache(maxsize=CACHE_SIZE)
def mask_pgm(polygons: tuple[Polygon, ...], width: int, height: int) -> bytes:
    """The PGM of ``polygons`` at ``width`` x ``height`` (cached)."""
    return pgm(width, height, coverage(polygons, width, height))


def coverage(polygons: tuple[Polygon, ...], width: int, height: int) -> bytearray:
    """One byte per pixel, row by row: 255 masked, 0 clear."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"cannot mask a {width}x{height} picture")
    buffer = bytearray(width * height)
    full = memoryview(b"\xff" * (width + 2))
    for polygon in polygons:
        _fill(buffer, full, [(x * width, y * height) for x, y in polygon], width, height)
    return buffer


def _fill(
    buffer: bytearray,
    full: memoryview,
    points: list[tuple[float, float]],
    width: int,
    height: int,
) -> None:
    edges = list(zip(points, points[1:] + points[:1], strict=True))
    top = min(y for _, y in points)
    bottom = max(y for _, y in points)
    first = max(0, math.floor(top) // 2 * 2)
    last = min(height, math.ceil(bottom) + 2)
    for r0 in range(first, last, 2):
        r1 = min(r0 + 2, height)
        spans: list[tuple[float, float]] = []
        for line in (float(r0), (r0 + r1) / 2, float(r1)):
            crossings = sorted(_crossings(edges, line))
            spans.extend(zip(crossings[0::2], crossings[1::2], strict=False))
        spans.extend(_edge_extents(edges, r0, r1))
        for a, b in spans:
            x0 = max(0, math.floor(a) // 2 * 2)
            x1 = min(width, -(-math.ceil(b) // 2) * 2)
            if x1 <= x0:
                continue
            run = full[: x1 - x0]
            for row in range(r0, r1):
                start = row * width
                buffer[start + x0 : start + x1] = run


def _edge_extents(
    edges: list[tuple[tuple[float, float], tuple[float, float]]], r0: float, r1: float
) -> list[tuple[float, float]]:
    """The horizontal extent of each edge's part inside the band [r0, r1]: the
    outline itself is always masked, even where no sample line crosses it."""
    found = []
    for (x1, y1), (x2, y2) in edges:
        low, high = min(y1, y2), max(y1, y2)
        if high <= r0 or low >= r1:  # touching the band's border line is not entering it
            if not (high == low and r0 < high < r1):
                continue
        if high == low:
            found.append((min(x1, x2), max(x1, x2)))
            continue
        ya, yb = max(low, r0), min(high, r1)
        xa = x1 + (ya - y1) * (x2 - x1) / (y2 - y1)
        xb = x1 + (yb - y1) * (x2 - x1) / (y2 - y1)
        found.append((min(xa, xb), max(xa, xb)))
    return found


def _crossings(
    edges: list[tuple[tuple[float, float], tuple[float, float]]], y: float
) -> list[float]:
    """Where the horizontal line ``y`` crosses the polygon's edges (each edge
    half-open in y, so a corner on the line counts once)."""
    found = []
    for (x1, y1), (x2, y2) in edges:
        if (y1 <= y < y2) or (y2 <= y < y1):
            found.append(x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return found
