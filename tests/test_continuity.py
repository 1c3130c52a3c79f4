"""The continuity proof against a real SQLite store: what it says of every
missing second (future, being recorded, destroyed, never recorded), and the API's
answers to an unknown camera or an inverted range."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st
from retention_helpers import mount_tmpfs, pressure_site, seed, unmount

from csuhub.recording.continuity import (
    DESTROYED,
    FUTURE,
    IN_PROGRESS,
    LIVE,
    NOT_RECORDED,
    TOLERANCE,
    RecorderNow,
    _Mark,
    classify,
    continuity,
    known_camera,
)
from csuhub.security.tokens import hash_secret
from csuhub.store import Store
from csuhub.testing import build_hub, make_hub

DAY = 86400.0
NOW = time.time() // 3600 * 3600
AUTH = {"reference": "2022-VP-1", "issued": "2022-01-10", "expires": "2099-01-09"}


async def store_with(
    tmp_path: Path, spans: list[tuple[float, float]], camera: str = "cam-a"
) -> Store:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    for i, (a, b) in enumerate(spans):
        await store.add_segment(
            camera, start=a, end=b, size=100, path=f"{camera}/{i}.mp4", sha256=None
        )
    return store


async def test_time_after_now_is_future_and_not_counted(tmp_path: Path) -> None:
    # seen: a range reaching past now counted the future as "not recorded"
    now = NOW
    store = await store_with(tmp_path, [(now - 600, now - 300), (now - 300, now)])
    try:
        report = await continuity(store, "cam-a", now - 600, now + 600, now=now)
    finally:
        await store.close()
    assert report["percent"] == 100.0
    assert report["future_s"] == 600 and report["measured_s"] == 600
    assert [(g["state"], g["start"], g["end"]) for g in report["gaps"]] == [
        (FUTURE, now, now + 600)
    ]


async def test_the_open_segment_is_in_progress_only_while_the_recorder_runs(
    tmp_path: Path,
) -> None:
    # seen: the minute being recorded (not indexed until it closes) was "not recorded"
    now = NOW
    store = await store_with(tmp_path, [(now - 3600, now - 40)])
    try:
        live = await continuity(
            store, "cam-a", now - 3600, now, now=now, recorder=RecorderNow(True, 60)
        )
        stopped = await continuity(
            store, "cam-a", now - 3600, now, now=now, recorder=RecorderNow(False, 60)
        )
        # a recorder "running" but silent for far longer than a segment: a hole again
        silent = await continuity(
            store, "cam-a", now - 3600, now + 1000, now=now + 1000, recorder=RecorderNow(True, 60)
        )
    finally:
        await store.close()
    assert live["percent"] == 100.0 and live["in_progress_s"] == 40
    assert [g["state"] for g in live["gaps"]] == [IN_PROGRESS]
    assert live["gaps"][0]["reason"] == "recording in progress"
    assert stopped["percent"] < 100 and [g["state"] for g in stopped["gaps"]] == [NOT_RECORDED]
    assert [g["state"] for g in silent["gaps"]] == [NOT_RECORDED, IN_PROGRESS]
    assert silent["in_progress_s"] == 60 * 1.5 + 5


async def test_unknown_and_forgotten_cameras(tmp_path: Path) -> None:
    store = await store_with(tmp_path, [(NOW - 100, NOW - 40)], camera="cam-gone")
    try:
        await store.upsert_camera("cam-reg", name="R", driver="simcam", state="online")
        await store.add_gap("cam-gap", NOW - 100, NOW - 50, "camera offline")
        assert await known_camera(store, "cam-gone")  # footage of a forgotten camera
        assert await known_camera(store, "cam-reg")
        assert await known_camera(store, "cam-gap")
        assert not await known_camera(store, "cam-nope")
    finally:
        await store.close()


async def test_a_disk_full_sweep_shows_destroyed_footage_as_destroyed(tmp_path: Path) -> None:
    """Seen: after a storage-pressure sweep on a full disk, the destroyed footage
    read as "ffmpeg restart: disk full" holes. The register must win."""
    storage = mount_tmpfs(tmp_path / "small", "4m")
    try:
        cfg = pressure_site(storage, AUTH)
        hub = build_hub(tmp_path / "data", cfg)
        await hub.start()
        try:
            await asyncio.wait_for(hub.retention.swept.wait(), 10)
            old = [NOW - 10 * DAY + i * 120 for i in range(24)]
            recent = [NOW - 1 * DAY + i * 120 for i in range(24)]
            seed(
                hub.data_dir / "csuhub.db",
                storage,
                [("cam-m", s) for s in old + recent],
                size=64 * 1024,
            )
            t0, t1 = old[0], old[-1] + 120
            # the disk filled up: ffmpeg restarted, and the gap it recorded overlaps
            # the last (bogus) segment it had indexed before
            await hub.store.add_gap("cam-m", t1 - 80, t1 + 300, "ffmpeg restart: disk full")
            report = await hub.retention.sweep(now=NOW)
            assert report.by_policy == {"storage_pressure": 24}
            proof = await continuity(hub.store, "cam-m", t0, t1 + 300, now=NOW)
            entry = (await hub.store.retention.destructions("cam-m"))[0]
        finally:
            await hub.stop()
    finally:
        unmount(storage)
    gaps = proof["gaps"]
    assert [(g["state"], g["start"], g["end"]) for g in gaps] == [
        (DESTROYED, t0, t1),
        (NOT_RECORDED, t1, t1 + 300),
    ]
    assert gaps[0]["reason"] == f"destroyed under storage pressure (register entry {entry['id']})"
    assert gaps[0]["register_entry"] == entry["id"] and gaps[0]["policy"] == "storage_pressure"
    assert gaps[1]["reason"] == "ffmpeg restart: disk full"
    assert proof["destroyed_s"] == t1 - t0 and proof["percent"] == 0.0


spans = st.lists(
    st.tuples(st.floats(0, 1000), st.floats(0, 200), st.sampled_from(list(range(5)))),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(lo=st.floats(0, 500), width=st.floats(0.01, 800), raw=spans)
def test_property_pieces_tile_the_hole_exactly(lo: float, width: float, raw: Any) -> None:
    """Whatever the marks (overlapping, outside, tiny), the pieces are ordered,
    contiguous, cover the hole exactly, and never blur future or in-progress time
    into missing footage."""
    states = [FUTURE, IN_PROGRESS, DESTROYED, NOT_RECORDED, "damaged"]
    marks = [_Mark(a, a + w, states[s], f"r{s}") for a, w, s in raw]
    hole = (lo, lo + width)
    pieces = classify(hole, marks)
    assert pieces[0]["start"] == hole[0] and pieces[-1]["end"] == hole[1]
    for a, b in pairwise(pieces):
        assert a["end"] == b["start"] and a["start"] < a["end"]
        assert (a["state"], a["reason"]) != (b["state"], b["reason"])
    for piece in pieces:
        if piece["state"] in LIVE:  # live time is exactly what a live mark covers
            mid = (piece["start"] + piece["end"]) / 2
            assert any(m.start <= mid < m.end and m.state == piece["state"] for m in marks)
        elif len(pieces) > 1 and piece["end"] - piece["start"] < TOLERANCE:
            # only a sliver next to live time (which never absorbs) may stay short
            neighbours = [
                p for p in pieces if p["end"] == piece["start"] or p["start"] == piece["end"]
            ]
            assert any(n["state"] in LIVE for n in neighbours)


async def test_api_timeline_refuses_unknown_cameras_and_inverted_ranges(tmp_path: Path) -> None:
    # seen: GET /api/recordings/cam-nope answered 200 and "0 %"
    async with make_hub(tmp_path / "hub", web=True) as hub:
        await hub.store.create_token("viewer", "viewer", hash_secret("csu_v"))
        await hub.store.add_segment(
            "cam-a", start=NOW - 600, end=NOW - 540, size=10, path="cam-a/1.mp4", sha256=None
        )
        auth = {"Authorization": "Bearer csu_v"}
        base = f"{hub.web.url}/api/recordings"
        async with aiohttp.ClientSession(headers=auth) as session:
            for path in ("cam-nope", "cam-nope/gaps"):
                async with session.get(f"{base}/{path}") as resp:
                    assert resp.status == 404, path
                    assert (await resp.json())["error"] == "no such camera"
            inverted = {"from": str(NOW), "to": str(NOW - 60)}
            for path in ("cam-a", "cam-a/gaps"):
                async with session.get(f"{base}/{path}", params=inverted) as resp:
                    assert resp.status == 400, path
                    assert "after" in (await resp.json())["error"]
            window = {"from": str(NOW - 600), "to": str(time.time() + 60)}
            async with session.get(f"{base}/cam-a", params=window) as resp:
                assert resp.status == 200
                body = await resp.json()
    assert body["future_s"] > 0 and body["percent"] < 100
    assert body["gaps"][-1]["state"] == FUTURE
