"""Which cameras can see an incident: great-circle ranking over a latitude-row grid.

A call gives a point; the desk wants the few adopted, online cameras nearest
to it, within a radius, and first those whose declared field of view covers
the point. Lille has about 100 cameras, where a scan of all of them would do;
the index still has to stay correct and fast at 10,000 (a metropolis, or a
département's shared hub), so it never scans what cannot be within the radius.

Why rows of latitude with cameras sorted by longitude, and not square cells:
a query's bounding box on the sphere is a latitude interval (exact: no point
of a cap of angular radius d is more than d from its centre in latitude) and
a longitude interval of half-width asin(sin d / cos lat) (the cap's tangent
meridians), which is all longitudes once the cap reaches a pole, and which
wraps across the antimeridian. Rows of ``cell_m`` height cut the latitude
interval into a few rows; inside a row a bisection on longitude cuts the
longitude interval(s), however wide the radius is compared with ``cell_m``.
So a 50 km radius costs a few hundred bisections, not the 160,000 dictionary
probes a square grid of 250 m cells would, and a pole or the antimeridian is
an interval like any other, not a special case of cell arithmetic.

Rows are opened nearest the point first. Once the last of the ``limit`` picks
can no longer be displaced by a farther camera (it covers the point, or
coverage does not rank), no row or camera beyond its distance is looked at:
with a wide radius over a dense city the ranking, not the radius, decides.

The box is only a prefilter, widened by a margin far above float rounding;
every candidate is then measured with the very same haversine expression as
:func:`haversine_m`, so the index returns exactly what a brute-force ranking
over all cameras returns (the property tests compare the two).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["EARTH_RADIUS_M", "CameraIndex", "CameraPoint", "Ranked", "haversine_m"]

#: the IUGG mean Earth radius: the sphere that best fits WGS84 for distances
EARTH_RADIUS_M = 6371008.8

_asin = math.asin
_cos = math.cos
_sin = math.sin
_sqrt = math.sqrt
_remainder = math.remainder
_atan2 = math.atan2
_degrees = math.degrees
_radians = math.radians
_DIAMETER = 2 * EARTH_RADIUS_M
#: radians added to the prefilter box: about 6 mm, some 10^7 times any
#: rounding of the haversine, so float error never drops a camera the exact
#: distance keeps (the box is a superset; the distance decides)
_MARGIN = 1e-9
_HALF_PI = math.pi / 2


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{what} must be a number, not NaN")
    return float(value)


def _coordinate(value: object, what: str, bound: float) -> float:
    number = _number(value, what)
    if not -bound <= number <= bound:
        raise ValueError(f"{what} must be within [{-bound:g}, {bound:g}], not {value!r}")
    return number


def _cos_lat(lat: float) -> float:
    """cos of a latitude, exactly 0 at a pole (cos(pi/2) is 6e-17 in floats), so
    that every longitude at a pole is the same point, at distance 0."""
    return 0.0 if lat == 90.0 or lat == -90.0 else _cos(_radians(lat))


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (degrees).

    The haversine form stays accurate at the few-metre distances that matter
    here, where the spherical law of cosines loses digits; the sphere's error
    against the ellipsoid (up to 0.5 %) is far below a call's uncertainty."""
    _coordinate(lat1, "lat1", 90.0)
    _coordinate(lon1, "lon1", 180.0)
    _coordinate(lat2, "lat2", 90.0)
    _coordinate(lon2, "lon2", 180.0)
    p1 = _radians(lat1)
    p2 = _radians(lat2)
    # the longitude difference is reduced to [-180, 180] exactly (remainder
    # is exact), so 180 and -180 are one meridian at distance 0, not 1e-9 m
    dl = _radians(_remainder(lon2 - lon1, 360.0))
    a = _sin((p2 - p1) / 2) ** 2 + _cos_lat(lat1) * _cos_lat(lat2) * _sin(dl / 2) ** 2
    return _DIAMETER * _asin(min(1.0, _sqrt(a)))


@dataclass(frozen=True, slots=True)
class CameraPoint:
    """What the index knows of one camera: where it stands, its district, and
    the field of view it declares (bearing clockwise from true north and the
    horizontal angle, both degrees; no view is declared unless both are)."""

    id: str
    lat: float
    lon: float
    district: str | None = None
    bearing: float | None = None
    fov: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"camera id must be a non-empty string, not {self.id!r}")
        _coordinate(self.lat, f"camera {self.id}: lat", 90.0)
        _coordinate(self.lon, f"camera {self.id}: lon", 180.0)
        if self.district is not None and not isinstance(self.district, str):
            raise TypeError(f"camera {self.id}: district must be a string or None")
        if self.bearing is not None:
            bearing = _number(self.bearing, f"camera {self.id}: bearing")
            if not 0.0 <= bearing <= 360.0:
                raise ValueError(
                    f"camera {self.id}: bearing must be within [0, 360], not {bearing}"
                )
        if self.fov is not None:
            fov = _number(self.fov, f"camera {self.id}: fov")
            if not 0.0 < fov <= 360.0:
                raise ValueError(f"camera {self.id}: fov must be within (0, 360], not {fov}")


@dataclass(frozen=True, slots=True)
class Ranked:
    """One camera in a ranking: how far it is from the point and whether its
    declared field of view covers the point (False when none is declared)."""

    id: str
    distance_m: float
    covers: bool


def _towards(
    sin_c: float, cos_c: float, lon_c: float, sin_q: float, cos_q: float, lon_q: float
) -> float:
    """Initial great-circle bearing from a camera to a point, degrees in [0, 360),
    from the sines and cosines of their latitudes (the index keeps the camera's)."""
    dl = _radians(_remainder(lon_q - lon_c, 360.0))
    y = _sin(dl) * cos_q
    x = cos_c * sin_q - sin_c * cos_q * _cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def _within(towards: float, bearing: float, half_fov: float) -> bool:
    off = abs(towards - bearing) % 360.0
    return min(off, 360.0 - off) <= half_fov


def _covers(camera: CameraPoint, lat: float, lon: float, distance_m: float) -> bool:
    """Whether the camera's declared view covers the point: the bearing from the
    camera to the point is within half the angle of view of where it looks.
    A point at the camera itself is covered (there is no direction to miss).
    The index computes the same from values it keeps; this is the reference."""
    if camera.bearing is None or camera.fov is None:
        return False
    if camera.fov >= 360.0 or distance_m == 0.0:
        return True
    pc = _radians(camera.lat)
    pq = _radians(lat)
    towards = _towards(_sin(pc), _cos(pc), camera.lon, _sin(pq), _cos(pq), lon)
    return _within(towards, camera.bearing, camera.fov / 2)


def _check_query(lat: float, lon: float, radius_m: float, limit: int) -> tuple[float, float]:
    lat = _coordinate(lat, "lat", 90.0)
    lon = _coordinate(lon, "lon", 180.0)
    radius = _number(radius_m, "radius_m")
    if radius < 0:
        raise ValueError(f"radius_m must be >= 0, not {radius_m!r}")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, not {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    return lat, lon


def _a_cut(radius_m: float) -> float:
    """The haversine term ``a`` above which a camera is surely beyond the radius,
    with a relative margin of 1e-9 (float error is near 1e-16): comparing ``a``
    spares the sqrt and asin of the box's corners. Off (infinite) where the
    margin would not survive: a radius so small that sin^2 underflows, or so
    large (beyond a quarter meridian) that sin flattens near its maximum."""
    d = radius_m / EARTH_RADIUS_M * (1 + _MARGIN)
    if not 1e-100 < d <= _HALF_PI:
        return math.inf
    return _sin(d / 2) ** 2 * (1 + _MARGIN)


def _gap_m(key: int, row_deg: float, lat: float) -> float:
    """A lower bound of the distance from latitude ``lat`` to any camera of row
    ``key``: the meridian arc to the row's nearer edge, less 1e-9 degree
    (0.1 mm) for the rounding of the row arithmetic."""
    south = key * row_deg - 90.0
    gap = max(south - lat, lat - south - row_deg) - 1e-9
    return EARTH_RADIUS_M * _radians(gap) if gap > 0.0 else 0.0


#: what the index keeps of a declared view: bearing, half the angle, whether it
#: sees all around, and the sine and cosine of the camera's latitude
_View = tuple[float, float, bool, float, float]


class _Row:
    """The cameras of one latitude row, sorted by longitude for bisection."""

    __slots__ = ("entries", "lons")

    def __init__(self) -> None:
        self.lons: list[float] = []
        # (lat radians, cos lat, lon degrees, id, view), aligned with lons
        self.entries: list[tuple[float, float, float, str, _View | None]] = []


class CameraIndex:
    """The cameras of a site, indexed for "nearest to this point" and "in this
    district". Immutable: the desk rebuilds it when the cameras change (a
    build of 10,000 cameras takes some 20 ms)."""

    def __init__(self, cameras: Iterable[CameraPoint], cell_m: float = 250.0) -> None:
        cell = _number(cell_m, "cell_m")
        if not 1.0 <= cell < math.inf:  # below a metre, rows only cost memory
            raise ValueError(f"cell_m must be a finite number of metres >= 1, not {cell_m!r}")
        self._row_deg = math.degrees(cell / EARTH_RADIUS_M)
        self._cameras: dict[str, CameraPoint] = {}
        rows: dict[int, list[tuple[float, str, CameraPoint]]] = {}
        districts: dict[str, list[str]] = {}
        for camera in cameras:
            if not isinstance(camera, CameraPoint):
                raise TypeError(f"expected a CameraPoint, not {type(camera).__name__}")
            if camera.id in self._cameras:
                raise ValueError(f"camera id {camera.id!r} is indexed twice")
            self._cameras[camera.id] = camera
            rows.setdefault(self._row_of(camera.lat), []).append((camera.lon, camera.id, camera))
            if camera.district is not None:
                districts.setdefault(camera.district.casefold(), []).append(camera.id)
        self._keys = sorted(rows)
        self._rows: list[_Row] = []
        for key in self._keys:
            row = _Row()
            for lon, _, camera in sorted(rows[key], key=lambda item: (item[0], item[1])):
                p = _radians(camera.lat)
                view: _View | None = None
                if camera.bearing is not None and camera.fov is not None:
                    view = (camera.bearing, camera.fov / 2, camera.fov >= 360.0, _sin(p), _cos(p))
                row.lons.append(lon)
                row.entries.append((p, _cos_lat(camera.lat), lon, camera.id, view))
            self._rows.append(row)
        self._districts = {name: sorted(ids) for name, ids in districts.items()}

    def __len__(self) -> int:
        return len(self._cameras)

    def _row_of(self, lat: float) -> int:
        return math.floor((lat + 90.0) / self._row_deg)

    def in_district(self, district: str) -> list[str]:
        """The ids of the cameras of a district (case-insensitively), sorted:
        what an incident with an address but no point falls back to."""
        if not isinstance(district, str):
            raise TypeError(f"district must be a string, not {type(district).__name__}")
        return list(self._districts.get(district.casefold(), ()))

    def nearest(
        self,
        lat: float,
        lon: float,
        *,
        radius_m: float,
        limit: int,
        prefer_fov: bool = True,
        allowed: Callable[[str], bool] | None = None,
    ) -> list[Ranked]:
        """At most ``limit`` cameras within ``radius_m`` (inclusive) of the point,
        among those ``allowed`` accepts: with ``prefer_fov``, those whose view
        covers the point first; then nearest first; ties by id."""
        lat, lon = _check_query(lat, lon, radius_m, limit)
        if limit == 0 or not self._cameras:
            return []
        prefer = bool(prefer_fov)
        p1 = _radians(lat)
        c1 = _cos_lat(lat)
        sin_q = _sin(p1)
        cos_q = _cos(p1)
        keys = self._keys
        rows = self._rows
        row_deg = self._row_deg
        reach = math.degrees(radius_m / EARTH_RADIUS_M + _MARGIN)
        first = bisect_left(keys, math.floor((max(-90.0, lat - reach) + 90.0) / row_deg))
        last = bisect_right(keys, math.floor((min(90.0, lat + reach) + 90.0) / row_deg))
        home = bisect_left(keys, math.floor((lat + 90.0) / row_deg))
        # the best `limit` so far, sorted; keys are unique (ids are), so a
        # tuple never compares its last field
        top: list[tuple[bool, float, str, bool]] = []
        full = False
        # no camera farther than `bound` can enter `top`: the radius, then,
        # once `top` is full and its last is covering (or coverage does not
        # rank), that last one's distance
        bound = float(radius_m)
        cut_for = math.nan
        intervals: list[tuple[float, float]] = []
        a_cut = math.inf
        down, up = home - 1, home
        gap_down = _gap_m(keys[down], row_deg, lat) if down >= first else math.inf
        gap_up = _gap_m(keys[up], row_deg, lat) if up < last else math.inf
        # rows nearest the point first, so that the bound shrinks early and
        # the rows beyond it are never opened
        while down >= first or up < last:
            if gap_down <= gap_up:
                row, gap = rows[down], gap_down
                down -= 1
                gap_down = _gap_m(keys[down], row_deg, lat) if down >= first else math.inf
            else:
                row, gap = rows[up], gap_up
                up += 1
                gap_up = _gap_m(keys[up], row_deg, lat) if up < last else math.inf
            if gap > bound:  # the nearer front: every row left is farther still
                break
            if bound != cut_for:
                intervals = self._lon_intervals(lat, lon, bound)
                a_cut = _a_cut(bound)
                cut_for = bound
            lons = row.lons
            entries = row.entries
            for lo, hi in intervals:
                start = bisect_left(lons, lo)
                stop = bisect_right(lons, hi)
                for p2, c2, lon2, cid, view in entries[start:stop]:
                    # the very expression of haversine_m, so that the distances
                    # (and so the ranking) equal a scan's to the last bit
                    dl = _radians(_remainder(lon2 - lon, 360.0))
                    a = _sin((p2 - p1) / 2) ** 2 + c1 * c2 * _sin(dl / 2) ** 2
                    if a > a_cut:  # surely outside: spare the sqrt and asin
                        continue
                    root = _sqrt(a)
                    distance = _DIAMETER * _asin(root if root < 1.0 else 1.0)
                    if distance > bound:
                        continue
                    if allowed is not None and not allowed(cid):
                        continue
                    if view is None:
                        covers = False
                    elif view[2] or distance == 0.0:
                        covers = True
                    else:  # _towards and _within, inlined (a third of the time)
                        bearing, half, _, sin_c, cos_c = view
                        back = _radians(_remainder(lon - lon2, 360.0))
                        y = _sin(back) * cos_q
                        x = cos_c * sin_q - sin_c * cos_q * _cos(back)
                        off = abs(_degrees(_atan2(y, x)) % 360.0 - bearing) % 360.0
                        covers = off <= half or 360.0 - off <= half
                    key = (prefer and not covers, distance, cid, covers)
                    if full:
                        if key > top[-1]:
                            continue
                        insort(top, key)
                        top.pop()
                    else:
                        insort(top, key)
                        full = len(top) == limit
                    if full and not top[-1][0]:
                        bound = top[-1][1]
        return [Ranked(cid, distance, covers) for _, distance, cid, covers in top]

    @staticmethod
    def _lon_intervals(lat: float, lon: float, radius_m: float) -> list[tuple[float, float]]:
        """The longitude intervals (degrees) that hold every point within
        ``radius_m`` of (lat, lon): one, two across the antimeridian, or the
        whole circle when the cap reaches a pole."""
        d = radius_m / EARTH_RADIUS_M + _MARGIN
        p = _radians(lat)
        if abs(p) + d >= _HALF_PI:
            return [(-180.0, 180.0)]
        ratio = _sin(d) / _cos(p)
        if ratio >= 1.0:
            return [(-180.0, 180.0)]
        half = math.degrees(_asin(ratio) + _MARGIN)
        if half >= 180.0:
            return [(-180.0, 180.0)]
        lo = lon - half
        hi = lon + half
        intervals = [(max(-180.0, lo), min(180.0, hi))]
        if lo < -180.0:
            intervals.append((lo + 360.0, 180.0))
        if hi > 180.0:
            intervals.append((-180.0, hi - 360.0))
        return intervals
