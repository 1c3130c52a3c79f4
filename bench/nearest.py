#!/usr/bin/env python3
"""B10: nearest-camera ranking (``CameraIndex.nearest``) against a scan of every camera.

Set-up (untimed): N cameras (100 and 10,000) drawn uniformly over an area,
two in three with a declared field of view (random bearing, 40-120 degrees),
19 in 20 online. Two areas: Lille (50.60-50.66 N, 2.99-3.12 E, about
6.7 x 9.2 km: 10,000 cameras there is the dense worst case, about 130 within
the radius of any point) and mainland France (42.3-51.1 N, 4.8 W-8.2 E).

Timed, per query, over random points of the same area: what the desk asks
for a call, ``nearest(lat, lon, radius_m=500, limit=6, prefer_fov=True,
allowed=online)`` (the site defaults).

Baseline in the same run: a brute-force scan of every camera with the same
haversine over the same precomputed radians and cosines (no validation, no
index), filtered by radius and ``allowed``, field of view computed the same
way, sorted, the first ``limit`` kept. The two alternate query by query, so
that a busy neighbour on the machine costs both alike, and every answer of
the index is checked equal to the scan's (any difference fails the bench).
The timed loop runs after ``gc.collect()`` and ``gc.freeze()``: in a running
hub the cameras are old objects, and a collection that happens to walk them
during a query is the hub's pause, not the ranking's (without the freeze a
10,000-camera set-up puts a 1-10 ms collection into a few queries of both
sides, which is all a p99 over 1,000 queries then measures).

Figures: p50 and p99 per query for each (size, area), and the build time;
for information, 10,000 cameras with the largest radius a site may set
(50 km: in Lille every camera is within it).
Targets: p99 at 10,000 cameras < 2 ms in both areas, and ratio (index p99
over scan p99 at 10,000 cameras, the worse area) <= 0.2.

Each query is timed twice: thread CPU time (``time.thread_time_ns``), which
the targets judge, and wall-clock time, printed beside it. On the shared
2-core CI box (load 2-4 from other test runs) a query of 0.2 ms that happens
to straddle a scheduler time slice waits 4 ms for the core: the wall p99 then
measures the neighbours, not the ranking; the CPU p99 does not. ``--quick``: fewer
queries (under 60 s; about 15 s on the CI box). Last line: the JSON result.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from csuhub.incidents.nearest import EARTH_RADIUS_M, CameraIndex, CameraPoint

AREAS = {
    "lille": (50.60, 50.66, 2.99, 3.12),
    "france": (42.3, 51.1, -4.8, 8.2),
}
SIZES = (100, 10_000)
RADIUS = 500.0
WIDE = 50_000.0
LIMIT = 6
DIAMETER = 2 * EARTH_RADIUS_M


def cameras_in(area: tuple[float, float, float, float], n: int, rng: random.Random):  # type: ignore[no-untyped-def]
    south, north, west, east = area
    cameras = []
    for i in range(n):
        lat, lon = rng.uniform(south, north), rng.uniform(west, east)
        if i % 3:
            cameras.append(
                CameraPoint(
                    f"cam-{i:05d}", lat, lon, None, rng.uniform(0, 360), rng.uniform(40, 120)
                )
            )
        else:
            cameras.append(CameraPoint(f"cam-{i:05d}", lat, lon))
    return cameras


class Scan:
    """The baseline: every camera measured, with what an index-free ranker would
    precompute anyway (radians, cosines), and the same float expressions, so
    that its answers are comparable bit for bit."""

    def __init__(self, cameras: list[CameraPoint]) -> None:
        self.rows = []
        for c in cameras:
            p = math.radians(c.lat)
            cos_lat = 0.0 if abs(c.lat) == 90.0 else math.cos(p)
            view = None
            if c.bearing is not None and c.fov is not None:
                view = (c.bearing, c.fov / 2, c.fov >= 360.0, math.sin(p), math.cos(p))
            self.rows.append((p, cos_lat, c.lon, c.id, view))

    def nearest(
        self, lat: float, lon: float, radius_m: float, limit: int, allowed: Callable[[str], bool]
    ) -> list[tuple[str, float, bool]]:
        sin, asin, sqrt, radians, rem = math.sin, math.asin, math.sqrt, math.radians, math.remainder
        p1 = radians(lat)
        c1 = 0.0 if abs(lat) == 90.0 else math.cos(p1)
        sin_q, cos_q = sin(p1), math.cos(p1)
        found = []
        for p2, c2, lon2, cid, view in self.rows:
            dl = radians(rem(lon2 - lon, 360.0))
            a = sin((p2 - p1) / 2) ** 2 + c1 * c2 * sin(dl / 2) ** 2
            distance = DIAMETER * asin(min(1.0, sqrt(a)))
            if distance > radius_m or not allowed(cid):
                continue
            if view is None:
                covers = False
            elif view[2] or distance == 0.0:
                covers = True
            else:
                dl = radians(rem(lon - lon2, 360.0))
                y = sin(dl) * cos_q
                x = view[4] * sin_q - view[3] * cos_q * math.cos(dl)
                off = abs(math.degrees(math.atan2(y, x)) % 360.0 - view[0]) % 360.0
                covers = min(off, 360.0 - off) <= view[1]
            found.append((not covers, distance, cid, covers))
        found.sort()
        return [(cid, distance, covers) for _, distance, cid, covers in found[:limit]]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    size: int, area: str, queries: int, seed: int, radius: float = RADIUS
) -> dict[str, float | bool]:
    rng = random.Random(seed)
    box = AREAS[area]
    cameras = cameras_in(box, size, rng)
    online = {c.id for c in cameras if rng.random() < 0.95}
    allowed = online.__contains__
    started = time.perf_counter()
    index = CameraIndex(cameras)
    build_ms = (time.perf_counter() - started) * 1000
    scan = Scan(cameras)
    points = [(rng.uniform(box[0], box[1]), rng.uniform(box[2], box[3])) for _ in range(queries)]
    ours: list[float] = []  # thread CPU time per query, ms
    theirs: list[float] = []
    ours_wall: list[float] = []  # wall-clock time per query, ms
    theirs_wall: list[float] = []
    equal = True
    hits = 0
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    # the set-up's objects would be old in a running hub: a collection walking
    # them while a query runs is the hub's cost, not the ranking's
    gc.collect()
    gc.freeze()
    for k, (lat, lon) in enumerate(points):
        for side in (0, 1) if k % 2 else (1, 0):
            if side == 0:
                c0, t0 = cpu(), clock()
                got = index.nearest(lat, lon, radius_m=radius, limit=LIMIT, allowed=allowed)
                t1, c1 = clock(), cpu()
                ours.append((c1 - c0) / 1e6)
                ours_wall.append((t1 - t0) / 1e6)
            else:
                c0, t0 = cpu(), clock()
                want = scan.nearest(lat, lon, radius, LIMIT, allowed)
                t1, c1 = clock(), cpu()
                theirs.append((c1 - c0) / 1e6)
                theirs_wall.append((t1 - t0) / 1e6)
        hits += len(got)
        if [(r.id, r.distance_m, r.covers) for r in got] != want:
            equal = False
    gc.unfreeze()
    return {
        "build_ms": build_ms,
        "p50": statistics.median(ours),
        "p99": pct(ours, 0.99),
        "scan_p50": statistics.median(theirs),
        "scan_p99": pct(theirs, 0.99),
        "wall_p50": statistics.median(ours_wall),
        "wall_p99": pct(ours_wall, 0.99),
        "scan_wall_p99": pct(theirs_wall, 0.99),
        "mean_hits": hits / queries,
        "equal": equal,
    }


def line(size: int, area: str, radius: float, queries: int, r: dict[str, float | bool]) -> str:
    return (
        f"{size:>7,} {area:>6} {radius / 1000:>4g}km {queries:>6} {r['build_ms']:>6.1f} "
        f"{r['mean_hits']:>4.1f} | {r['p50']:>7.4f} {r['p99']:>7.4f} {r['wall_p99']:>7.4f} | "
        f"{r['scan_p50']:>7.3f} {r['scan_p99']:>7.3f} {r['scan_wall_p99']:>7.3f} | "
        f"{r['p99'] / r['scan_p99']:>5.3f}" + ("" if r["equal"] else "  DIFFERENT ANSWERS")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries, under 60 s")
    args = parser.parse_args()
    queries = {100: 2000, 10_000: 1000} if args.quick else {100: 10_000, 10_000: 3000}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpu, python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"limit {LIMIT}, prefer_fov, 95 % online; per query, ms (cpu: thread CPU time)")
    print(
        "cameras   area radius  quer. build hits |   index: cpu p50 p99, wall p99 |"
        "    scan: cpu p50 p99, wall p99 | ratio"
    )
    results = {}
    for size in SIZES:
        for area in AREAS:
            r = run(size, area, queries[size], seed=size * 7 + len(area))
            results[(size, area)] = r
            print(line(size, area, RADIUS, queries[size], r))
    # information, not judged: the largest radius a site may set (50 km), where
    # in Lille every camera is within it and the ranking, not the radius, decides
    for area in AREAS:
        n = queries[10_000] // 3
        r = run(10_000, area, n, seed=11 + len(area), radius=WIDE)
        results[("wide", area)] = r
        print(line(10_000, area, WIDE, n, r))
    equal = all(r["equal"] for r in results.values())
    big = [results[(10_000, area)] for area in AREAS]
    worst = max(big, key=lambda r: r["p99"] / r["scan_p99"])
    value = max(r["p99"] for r in big)
    ratio = worst["p99"] / worst["scan_p99"]
    ok = equal and value < 2.0 and ratio <= 0.2
    print(
        f"target: cpu p99 at 10,000 cameras, radius 500 m, < 2 ms (worst {value:.3f} ms) and "
        f"index/scan cpu p99 <= 0.2 (worst {ratio:.3f}); answers equal to the scan: {equal}"
    )
    print(
        json.dumps(
            {
                "bench": "nearest" + ("_quick" if args.quick else ""),
                "value": round(value, 4),
                "baseline": round(worst["scan_p99"], 4),
                "ratio": round(ratio, 3),
                "target": 0.2,
                "p99_target_ms": 2.0,
                "wall_p99_ms": round(max(r["wall_p99"] for r in big), 4),
                "equal": equal,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
