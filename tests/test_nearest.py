"""Nearest cameras: the index ranks exactly as a brute-force scan does.

The index prefilters with a latitude/longitude box; a box drawn one float too
narrow near a pole or across the antimeridian would silently drop the one
camera that saw the incident. So the property tests compare the index with a
scan of every camera, over camera sets drawn near the poles, on both sides of
±180°, with radii equal to a camera's exact distance, duplicates at one
point, and every limit.
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from csuhub.incidents.nearest import (
    EARTH_RADIUS_M,
    CameraIndex,
    CameraPoint,
    Ranked,
    _covers,
    haversine_m,
)


def brute(
    cameras: list[CameraPoint],
    lat: float,
    lon: float,
    *,
    radius_m: float,
    limit: int,
    prefer_fov: bool = True,
    allowed=None,  # type: ignore[no-untyped-def]
) -> list[Ranked]:
    """The reference: every camera measured, filtered, sorted."""
    rows = []
    for camera in cameras:
        distance = haversine_m(lat, lon, camera.lat, camera.lon)
        if distance > radius_m or (allowed is not None and not allowed(camera.id)):
            continue
        covers = _covers(camera, lat, lon, distance)
        rows.append((prefer_fov and not covers, distance, camera.id, covers))
    rows.sort()
    return [Ranked(cid, distance, covers) for _, distance, cid, covers in rows[:limit]]


def wrap(lon: float) -> float:
    if -180.0 <= lon <= 180.0:
        return lon
    return (lon + 180.0) % 360.0 - 180.0


CENTRE_LATS = st.one_of(
    st.sampled_from([90.0, -90.0, 89.9999, -89.99999, 89.5, 0.0, 50.6292, -33.9]),
    st.floats(-90, 90),
)
CENTRE_LONS = st.one_of(
    st.sampled_from([180.0, -180.0, 179.9999, -179.99999, 0.0, 3.0573]),
    st.floats(-180, 180),
)
SPREADS = st.sampled_from([0.0, 1e-6, 1e-4, 2e-3, 0.02, 0.5, 5.0, 60.0, 180.0])
VIEW = st.one_of(
    st.none(),
    st.tuples(
        st.one_of(st.sampled_from([0.0, 90.0, 180.0, 270.0, 360.0]), st.floats(0, 360)),
        st.one_of(st.sampled_from([1.0, 90.0, 180.0, 359.0, 360.0]), st.floats(0.5, 360)),
    ),
)


@st.composite
def scenes(draw):  # type: ignore[no-untyped-def]
    clat = draw(CENTRE_LATS)
    clon = draw(CENTRE_LONS)
    spread = draw(SPREADS)
    offset = st.floats(-spread, spread) if spread else st.just(0.0)
    raw = draw(
        st.lists(
            st.tuples(
                offset, offset, VIEW, st.sampled_from([None, "Centre", "CENTRE", "Wazemmes"])
            ),
            max_size=40,
        )
    )
    names = draw(st.permutations(range(len(raw))))
    cameras: list[CameraPoint] = []
    for (dlat, dlon, view, district), name in zip(raw, names, strict=True):
        if cameras and draw(st.integers(0, 5)) == 0:  # a second camera on the same mast
            lat, lon = cameras[-1].lat, cameras[-1].lon
        else:
            lat = min(90.0, max(-90.0, clat + dlat))
            lon = wrap(clon + dlon)
        bearing, fov = view if view else (None, None)
        cameras.append(CameraPoint(f"c{name}", lat, lon, district, bearing, fov))
    qlat = min(90.0, max(-90.0, clat + draw(offset)))
    qlon = wrap(clon + draw(offset))
    distances = sorted(haversine_m(qlat, qlon, c.lat, c.lon) for c in cameras)
    choices = [st.just(0.0), st.just(math.inf), st.floats(0, 2e7), st.floats(0, 2000)]
    if distances:
        exact = st.sampled_from(distances)
        choices += [exact, exact.map(lambda d: math.nextafter(d, -math.inf) if d else 0.0)]
    if distances:  # all of them: the case where ranking, not the radius, decides
        choices.append(st.just(distances[-1]))
    radius = draw(st.one_of(*choices))
    limit = draw(st.one_of(st.integers(0, 3), st.integers(0, len(cameras) + 2)))
    cell = draw(st.sampled_from([1.0, 37.0, 250.0, 5000.0, 1e6, 5e7]))
    return cameras, qlat, qlon, radius, limit, cell


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes(), prefer_fov=st.booleans(), filtered=st.booleans())
def test_index_equals_brute_force(scene, prefer_fov: bool, filtered: bool) -> None:  # type: ignore[no-untyped-def]
    cameras, lat, lon, radius, limit, cell = scene
    index = CameraIndex(cameras, cell_m=cell)
    allowed = (lambda cid: int(cid[1:]) % 3 != 0) if filtered else None
    got = index.nearest(
        lat, lon, radius_m=radius, limit=limit, prefer_fov=prefer_fov, allowed=allowed
    )
    want = brute(
        cameras, lat, lon, radius_m=radius, limit=limit, prefer_fov=prefer_fov, allowed=allowed
    )
    assert got == want
    assert len(got) <= limit
    assert all(r.distance_m <= radius for r in got)


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    bearing=st.floats(0, 360),
    metres=st.floats(0.5, 400),
)
def test_a_camera_at_the_exact_radius_is_in_and_one_float_beyond_is_out(
    lat: float, lon: float, bearing: float, metres: float
) -> None:
    # a camera placed `metres` away along `bearing`
    d = metres / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    camera = CameraPoint("cam", max(-90.0, min(90.0, math.degrees(p2))), wrap(math.degrees(l2)))
    index = CameraIndex([camera])
    exact = haversine_m(lat, lon, camera.lat, camera.lon)
    assert [r.id for r in index.nearest(lat, lon, radius_m=exact, limit=1)] == ["cam"]
    below = math.nextafter(exact, -math.inf)
    assert index.nearest(lat, lon, radius_m=below, limit=1) == []


def test_the_antimeridian_and_the_poles() -> None:
    cameras = [
        CameraPoint("east", 0.0, 179.9999),
        CameraPoint("west", 0.0, -179.9999),
        CameraPoint("dateline", 0.0, 180.0),
        CameraPoint("dateline-west", 0.0, -180.0),
        CameraPoint("pole", 90.0, 17.0),
        CameraPoint("near-pole", 89.9995, -120.0),
        CameraPoint("south", -90.0, 0.0),
    ]
    index = CameraIndex(cameras)
    got = index.nearest(0.0, -180.0, radius_m=50.0, limit=10)
    assert [r.id for r in got] == ["dateline", "dateline-west", "east", "west"]
    assert got[0].distance_m == 0.0 and got[1].distance_m == 0.0
    near_pole = index.nearest(89.9999, 100.0, radius_m=100.0, limit=10)
    assert [r.id for r in near_pole] == ["pole", "near-pole"]
    # a point at the pole: every longitude is the same place
    assert [r.id for r in index.nearest(90.0, -3.0, radius_m=1.0, limit=3)] == ["pole"]
    assert [r.id for r in index.nearest(-90.0, 179.0, radius_m=0.0, limit=3)] == ["south"]


def test_known_distances() -> None:
    # Lille Grand-Place to Paris Notre-Dame: about 204 km
    assert haversine_m(50.6369, 3.0635, 48.8530, 2.3499) == pytest.approx(204_000, rel=0.01)
    quarter = math.pi / 2 * EARTH_RADIUS_M
    assert haversine_m(0, 0, 90, 0) == pytest.approx(quarter, rel=1e-12)
    assert haversine_m(0, 0, 0, 180) == pytest.approx(2 * quarter, rel=1e-12)
    assert haversine_m(0, 179.5, 0, -179.5) == pytest.approx(haversine_m(0, 0, 0, 1), rel=1e-9)
    assert haversine_m(50.0, 3.0, 50.0, 3.0) == 0.0


def _at(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    d = metres / EARTH_RADIUS_M
    p1, b = math.radians(lat), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    dl = math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), wrap(lon + math.degrees(dl))


def test_field_of_view() -> None:
    lat, lon = 50.6369, 3.0635
    north = CameraPoint("n", lat, lon, bearing=0.0, fov=90.0)
    north_wrap = CameraPoint("nw", lat, lon, bearing=350.0, fov=40.0)
    everywhere = CameraPoint("all", lat, lon, bearing=123.0, fov=360.0)
    undeclared = CameraPoint("none", lat, lon)
    half = CameraPoint("half", lat, lon, bearing=90.0, fov=10.0)
    for bearing, covered_by_n, covered_by_nw in [
        (0.0, True, True),
        (10.0, True, True),
        (44.0, True, False),
        (50.0, False, False),
        (180.0, False, False),
        (316.0, True, False),
        (335.0, True, True),
        (280.0, False, False),
    ]:
        plat, plon = _at(lat, lon, bearing, 80.0)
        d = haversine_m(lat, lon, plat, plon)
        assert _covers(north, plat, plon, d) is covered_by_n, bearing
        assert _covers(north_wrap, plat, plon, d) is covered_by_nw, bearing
        assert _covers(everywhere, plat, plon, d)
        assert not _covers(undeclared, plat, plon, d)
    east = _at(lat, lon, 94.0, 50.0)
    assert _covers(half, *east, haversine_m(lat, lon, *east))
    beyond = _at(lat, lon, 96.0, 50.0)
    assert not _covers(half, *beyond, haversine_m(lat, lon, *beyond))
    # a point at the camera itself is covered by any declared view
    assert _covers(half, lat, lon, 0.0)
    assert not _covers(undeclared, lat, lon, 0.0)


def test_covering_cameras_rank_first_when_preferred() -> None:
    plat, plon = 50.6369, 3.0635
    # "near" is 20 m south of the point looking south (away); "far" is 100 m
    # south looking north (at the point); "side" 60 m east with no declared view
    nlat, nlon = _at(plat, plon, 180.0, 20.0)
    flat, flon = _at(plat, plon, 180.0, 100.0)
    slat, slon = _at(plat, plon, 90.0, 60.0)
    cameras = [
        CameraPoint("near", nlat, nlon, bearing=180.0, fov=60.0),
        CameraPoint("far", flat, flon, bearing=0.0, fov=60.0),
        CameraPoint("side", slat, slon),
        CameraPoint("far-twin", flat, flon, bearing=10.0, fov=60.0),
    ]
    index = CameraIndex(cameras)
    preferred = index.nearest(plat, plon, radius_m=500, limit=4)
    assert [(r.id, r.covers) for r in preferred] == [
        ("far", True),
        ("far-twin", True),
        ("near", False),
        ("side", False),
    ]
    plain = index.nearest(plat, plon, radius_m=500, limit=4, prefer_fov=False)
    assert [(r.id, r.covers) for r in plain] == [
        ("near", False),
        ("side", False),
        ("far", True),
        ("far-twin", True),
    ]
    assert [r.id for r in index.nearest(plat, plon, radius_m=500, limit=1)] == ["far"]
    only = index.nearest(plat, plon, radius_m=500, limit=4, allowed=lambda c: c != "far")
    assert [r.id for r in only] == ["far-twin", "near", "side"]
    assert index.nearest(plat, plon, radius_m=50, limit=4) == [
        Ranked("near", haversine_m(plat, plon, nlat, nlon), False)
    ]


def test_a_far_covering_camera_beats_many_near_ones_across_rows() -> None:
    """The ranking stops opening rows once its last pick is nearer than any row
    left; a non-covering pick must not stop it when coverage ranks first."""
    plat, plon = 50.6369, 3.0635
    cameras = []
    for i in range(30):  # a crowd within 60 m, none looking at the point
        clat, clon = _at(plat, plon, i * 12.0, 10.0 + 2 * i)
        cameras.append(CameraPoint(f"near-{i:02d}", clat, clon))
    flat, flon = _at(plat, plon, 0.0, 1500.0)  # six rows north, looking south
    cameras.append(CameraPoint("far", flat, flon, bearing=180.0, fov=20.0))
    index = CameraIndex(cameras)
    got = index.nearest(plat, plon, radius_m=2000, limit=2)
    assert [(r.id, r.covers) for r in got] == [("far", True), ("near-00", False)]
    assert [r.id for r in index.nearest(plat, plon, radius_m=2000, limit=1)] == ["far"]
    plain = index.nearest(plat, plon, radius_m=2000, limit=2, prefer_fov=False)
    assert [r.id for r in plain] == ["near-00", "near-01"]
    assert index.nearest(plat, plon, radius_m=1400, limit=1)[0].id == "near-00"


def test_districts() -> None:
    index = CameraIndex(
        [
            CameraPoint("b", 50.0, 3.0, "Vieux-Lille"),
            CameraPoint("a", 50.0, 3.0, "VIEUX-LILLE"),
            CameraPoint("c", 50.0, 3.0, "Straße"),
            CameraPoint("d", 50.0, 3.0),
        ]
    )
    assert index.in_district("vieux-lille") == ["a", "b"]
    assert index.in_district("STRASSE") == ["c"]
    assert index.in_district("Wazemmes") == []
    with pytest.raises(TypeError):
        index.in_district(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lat", "lon", "radius", "limit", "error"),
    [
        (math.nan, 3.0, 500.0, 5, ValueError),
        (50.0, math.nan, 500.0, 5, ValueError),
        (90.0001, 3.0, 500.0, 5, ValueError),
        (-91.0, 3.0, 500.0, 5, ValueError),
        (50.0, 180.5, 500.0, 5, ValueError),
        (50.0, -math.inf, 500.0, 5, ValueError),
        (50.0, 3.0, -1.0, 5, ValueError),
        (50.0, 3.0, math.nan, 5, ValueError),
        (50.0, 3.0, 500.0, -1, ValueError),
        ("50", 3.0, 500.0, 5, TypeError),
        (True, 3.0, 500.0, 5, TypeError),
        (50.0, 3.0, 500.0, 2.0, TypeError),
    ],
)
def test_bad_queries_are_refused(lat, lon, radius, limit, error) -> None:  # type: ignore[no-untyped-def]
    index = CameraIndex([CameraPoint("a", 50.0, 3.0)])
    with pytest.raises(error):
        index.nearest(lat, lon, radius_m=radius, limit=limit)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "", "lat": 0.0, "lon": 0.0},
        {"id": "a", "lat": math.nan, "lon": 0.0},
        {"id": "a", "lat": 0.0, "lon": 181.0},
        {"id": "a", "lat": -90.5, "lon": 0.0},
        {"id": "a", "lat": 0.0, "lon": 0.0, "bearing": 361.0},
        {"id": "a", "lat": 0.0, "lon": 0.0, "bearing": math.nan},
        {"id": "a", "lat": 0.0, "lon": 0.0, "fov": 0.0},
        {"id": "a", "lat": 0.0, "lon": 0.0, "fov": 400.0},
    ],
)
def test_bad_cameras_are_refused(kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        CameraPoint(**kwargs)


def test_bad_indexes_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        CameraIndex([CameraPoint("a", 0.0, 0.0), CameraPoint("a", 1.0, 1.0)])
    for cell in (0.0, 0.5, -5.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            CameraIndex([], cell_m=cell)
    with pytest.raises(TypeError):
        CameraIndex([("a", 0.0, 0.0)])  # type: ignore[list-item]
    assert CameraIndex([]).nearest(0.0, 0.0, radius_m=1e9, limit=3) == []


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(-200, 200),
            st.integers(-200, 200),
            st.booleans(),
            st.text(max_size=3),
            st.none(),
        ),
        min_size=4,
        max_size=4,
    )
)
@example(values=[90, 180, -90, -180])
def test_haversine_takes_only_coordinates(values: list) -> None:  # type: ignore[type-arg]
    try:
        distance = haversine_m(*values)
    except (TypeError, ValueError):
        ok = [
            not isinstance(v, bool) and isinstance(v, int | float) and -bound <= v <= bound
            for v, bound in zip(values, (90, 180, 90, 180), strict=True)
        ]
        assert not all(ok)
    else:
        assert 0.0 <= distance <= math.pi * EARTH_RADIUS_M + 1e-6


def test_ten_thousand_cameras_stay_fast() -> None:
    """Not a benchmark (bench/nearest.py is): a guard against a regression to a
    scan, loose enough for a loaded 2-core CI box."""
    import random

    rng = random.Random(13)
    cameras = [
        CameraPoint(f"cam-{i}", 50.60 + rng.random() * 0.09, 2.97 + rng.random() * 0.14)
        for i in range(10_000)
    ]
    index = CameraIndex(cameras)
    points = [(50.60 + rng.random() * 0.09, 2.97 + rng.random() * 0.14) for _ in range(300)]
    started = time.perf_counter()
    for lat, lon in points:
        index.nearest(lat, lon, radius_m=500.0, limit=6)
    per_query = (time.perf_counter() - started) / len(points)
    assert per_query < 0.01
    for lat, lon in points[:20]:
        assert index.nearest(lat, lon, radius_m=500.0, limit=6) == brute(
            cameras, lat, lon, radius_m=500.0, limit=6
        )
