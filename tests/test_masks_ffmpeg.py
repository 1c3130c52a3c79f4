"""THE mask test, with real ffmpeg: a known test pattern, a mask over part of
it; the exported video, a timeline frame and a snapshot are decoded back to
pixels, and the masked region must be uniformly the mask's grey while a
region outside still carries the pattern. And the lift: unmasked only while
an approved lift is in force, for the requisition it names."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from csuhub.hub import Hub
from csuhub.masks import lifts
from csuhub.masks.apply import mask_jpeg, masked_frame
from csuhub.masks.ffmpeg import live_transcode_args
from csuhub.masks.policy import effective_masks, export_plan, lift_held, picture_plan
from csuhub.recording.export import export_evidence
from csuhub.recording.layout import hour_dir
from csuhub.security.permissions import Principal, permissions_of
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.testing import build_hub

W, H = 320, 240
SITE_MASK = [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]  # x 80-239, y 60-179
DRAWN_MASK = ((0.8, 0.8), (0.95, 0.8), (0.95, 0.95), (0.8, 0.95))  # x 256-303, y 192-227
INSIDE_SITE = (84, 236, 64, 176)  # x0, x1, y0, y1 (exclusive), within the mask
INSIDE_DRAWN = (260, 300, 196, 224)
CONTROL = (0, 64, 0, 48)  # top left: never masked
GREY = 128
QUIET = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]

pytestmark = pytest.mark.slow


def person(name: str, role: str) -> Principal:
    return Principal(name, "user", (role,), permissions_of([role]))


def make_segments(work: Path, root: Path, camera_id: str, t0: float) -> Path:
    """Two 2 s segments of testsrc2 laid out as the recorder does; returns the clip."""
    clip = work / "clip.mp4"
    subprocess.run(
        [
            *QUIET,
            *("-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=10", "-t", "4"),
            *("-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10"),
            str(clip),
        ],
        check=True,
    )
    staging = work / "staging"
    staging.mkdir()
    subprocess.run(
        [
            *QUIET,
            *("-i", str(clip), "-c", "copy", "-f", "segment", "-segment_time", "2"),
            *("-reset_timestamps", "1", "-segment_format", "mp4", str(staging / "%03d.mp4")),
        ],
        check=True,
    )
    for index, path in enumerate(sorted(staging.iterdir())):
        start = t0 + index * 2
        folder = hour_dir(root, camera_id, start)
        folder.mkdir(parents=True, exist_ok=True)
        path.rename(folder / time.strftime("%Y%m%dT%H%M%SZ.mp4", time.gmtime(start)))
    return clip


def gray_frames(media: bytes | Path, width: int = W, height: int = H) -> list[bytes]:
    """Every frame of ``media`` as 8-bit grey, row by row."""
    source = ["-i", str(media)] if isinstance(media, Path) else ["-i", "pipe:0"]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *source, "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
        input=None if isinstance(media, Path) else media,
        capture_output=True,
        check=True,
    ).stdout
    size = width * height
    assert raw and len(raw) % size == 0
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def region(frame: bytes, box: tuple[int, int, int, int]) -> list[int]:
    x0, x1, y0, y1 = box
    return [frame[y * W + x] for y in range(y0, y1) for x in range(x0, x1)]


def assert_masked(frame: bytes, box: tuple[int, int, int, int]) -> None:
    values = region(frame, box)
    assert max(values) - min(values) <= 6 and abs(sum(values) / len(values) - GREY) <= 4, (
        min(values),
        max(values),
    )


def assert_pattern(frame: bytes, reference: bytes, box: tuple[int, int, int, int]) -> None:
    """The region still shows the pattern: varied, and as in the source."""
    values, expected = region(frame, box), region(reference, box)
    assert max(values) - min(values) > 40
    assert sum(abs(a - b) for a, b in zip(values, expected, strict=True)) / len(values) < 8


def camera(camera_id: str, masks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": camera_id,
        "driver": "simcam",
        "enabled": False,
        "privacy_masks": masks,
        "authorization": {"reference": "A-1", "issued": "2022-01-01", "expires": "2099-01-01"},
    }


@pytest.fixture
def footage(tmp_path: Path, ffmpeg_bin: str) -> tuple[Hub, float, Path]:
    t0 = (time.time() // 3600) * 3600 - 3600
    data = tmp_path / "data"
    clip = make_segments(tmp_path, data / "recordings", "cam-a", t0)
    make_segments_dir = tmp_path / "plain"
    make_segments_dir.mkdir()
    make_segments(make_segments_dir, data / "recordings", "cam-b", t0)
    config = {
        "cameras": [camera("cam-a", [{"name": "house", "polygon": SITE_MASK}]), camera("cam-b", [])]
    }
    return build_hub(data, config), t0, clip


async def export(hub: Hub, out: Path, camera_id: str, t0: float, **kw: Any) -> dict[str, Any]:
    return await export_evidence(
        hub, hub.recording, camera_id, t0, t0 + 4, user="opj", reason="PV 1", output=out, **kw
    )


def video_of(package: Path) -> bytes:
    with zipfile.ZipFile(package) as archive:
        return archive.read("video.mp4")


async def test_export_frame_and_snapshot_come_out_masked(
    footage: tuple[Hub, float, Path], tmp_path: Path
) -> None:
    hub, t0, clip = footage
    source = gray_frames(clip)
    await hub.start()
    try:
        alice = person("alice", "admin")
        await hub.store.masks.replace("cam-a", [("garden", DRAWN_MASK)], alice.name, time.time())
        masks = await effective_masks(hub, "cam-a")
        assert [(m.name, m.source) for m in masks] == [("house", "site"), ("garden", "api")]

        manifest = await export(hub, tmp_path / "masked.zip", "cam-a", t0)
        applied = manifest["privacy_masks"]
        assert applied["applied"] is True
        assert [(m["name"], m["source"]) for m in applied["masks"]] == [
            ("house", "site"),
            ("garden", "api"),
        ]
        assert applied["masks"][0]["polygon"] == SITE_MASK
        assert "alphamerge" in applied["filter"] and "overlay" in applied["filter"]
        assert "libx264" in applied["encoder"] and "re-encoded" in manifest["cut"]
        with zipfile.ZipFile(tmp_path / "masked.zip") as archive:
            assert "privacy masks" in archive.read("LISEZMOI.txt").decode()
        frames = gray_frames(video_of(tmp_path / "masked.zip"))
        assert len(frames) >= 35
        for frame in frames:  # every frame, the first included
            assert_masked(frame, INSIDE_SITE)
            assert_masked(frame, INSIDE_DRAWN)
        assert_pattern(frames[0], source[0], CONTROL)

        # a camera without masks: stream copy, as before
        plain = await export(hub, tmp_path / "plain.zip", "cam-b", t0)
        assert plain["privacy_masks"] == {"applied": False, "masks": []}
        assert plain["cut"].startswith("concat demuxer, stream copy")

        # a timeline frame
        seg = (await hub.store.segments("cam-a", t0 + 2.5, t0 + 2.6))[0]
        path = hub.recording.storage_root() / seg.path
        plan = await picture_plan(hub, "cam-a")
        jpeg = await masked_frame(hub.processes, path, 0.5, plan.apply)
        (frame,) = gray_frames(jpeg)
        assert_masked(frame, INSIDE_SITE)
        assert_masked(frame, INSIDE_DRAWN)
        assert_pattern(frame, source[25], CONTROL)

        # a snapshot (a camera's JPEG)
        still = subprocess.run(
            [*QUIET, "-i", str(clip), "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-"],
            capture_output=True,
            check=True,
        ).stdout
        (shown,) = gray_frames(await mask_jpeg(hub.processes, still, plan.apply))
        assert_masked(shown, INSIDE_SITE)
        assert_pattern(shown, gray_frames(still)[0], CONTROL)
        assert await mask_jpeg(hub.processes, still, ()) == still
    finally:
        await hub.stop()


async def test_only_an_approved_lift_in_force_unmasks(
    footage: tuple[Hub, float, Path], tmp_path: Path
) -> None:
    hub, t0, _ = footage
    await hub.start()
    try:
        officer, boss = person("officer", "requisition_officer"), person("boss", "supervisor")
        req = await hub.requisitions.create(
            {
                "reference": "PV-9",
                "service": "PJ",
                "officer": "OPJ Martin",
                "legal_frame": "flagrant_delit",
                "cameras": ["cam-a"],
                "start": t0,
                "end": t0 + 4,
                "reason": "vol",
            },
            officer.name,
        )
        lift = await lifts.request_lift(
            hub.store, officer, "cam-a", {"reason": "faces needed", "requisition_id": req["id"]}
        )
        # requested, not approved: masked
        pending = await export(hub, tmp_path / "1.zip", "cam-a", t0, requisition_id=req["id"])
        assert pending["privacy_masks"]["applied"] is True
        with pytest.raises(lifts.LiftError):
            await lifts.decide(hub.store, officer, lift["id"], True)
        await lifts.decide(hub.store, boss, lift["id"], True)
        # approved, but for the requisition: pictures and other exports stay masked
        assert (await picture_plan(hub, "cam-a")).apply
        other = await export(hub, tmp_path / "2.zip", "cam-a", t0)
        assert other["privacy_masks"]["applied"] is True
        result = await hub.requisitions.export(req["id"], officer.name, tmp_path / "handover")
        (package,) = (tmp_path / "handover").glob("*.zip")
        with zipfile.ZipFile(package) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert result["files"] and manifest["privacy_masks"]["applied"] is False
        assert manifest["privacy_masks"]["lift"]["decided_by"] == "boss"
        receipt = (tmp_path / "handover" / "receipt.html").read_text()
        assert f"masques levés (house) : levée n° {lift['id']}" in receipt
        assert "approuvée par boss" in receipt
        frames = gray_frames(video_of(package))
        values = region(frames[0], INSIDE_SITE)
        assert max(values) - min(values) > 40  # the pattern, unmasked
        # once an unmasked cut is made, is its lift still in force? (review M8)
        plan = await export_plan(hub, "cam-a", req["id"])
        assert plan.lift is not None and plan.apply == ()
        assert await lift_held(hub, plan)
        # over by itself: masked again, the expiry audited
        assert await lifts.expire(hub.store, now=time.time() + lifts.MAX_DURATION + 1)
        assert not await lift_held(hub, plan)
        after = await export(hub, tmp_path / "3.zip", "cam-a", t0, requisition_id=req["id"])
        assert after["privacy_masks"]["applied"] is True
        # a picture lift: snapshots and frames unmasked while it runs
        seen = await lifts.request_lift(hub.store, officer, "cam-a", {"reason": "incident"})
        await lifts.decide(hub.store, boss, seen["id"], True)
        assert (await picture_plan(hub, "cam-a")).apply == ()
        under = await picture_plan(hub, "cam-a")
        assert await lift_held(hub, under)
        await lifts.end_lift(hub.store, officer, seen["id"])
        assert not await lift_held(hub, under)  # ended early: no longer held
        assert (await picture_plan(hub, "cam-a")).apply
    finally:
        await hub.stop()


async def test_the_live_transcode_graph_masks_a_stream(tmp_path: Path, ffmpeg_bin: str) -> None:
    """Issue 14 will feed a camera's sub-stream to this; here a lavfi source."""
    from csuhub.masks.model import Mask
    from csuhub.masks.raster import mask_pgm

    mask = tmp_path / "mask.pgm"
    mask.write_bytes(mask_pgm((tuple(map(tuple, SITE_MASK)),), W, H))
    out = tmp_path / "live.mp4"
    args = live_transcode_args(
        "ffmpeg",
        ["-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=10:duration=1"],
        mask,
        W,
        H,
        ["-f", "mp4", str(out)],
    )
    proc = await asyncio.create_subprocess_exec(*args)
    assert await proc.wait() == 0
    for frame in gray_frames(out):
        assert_masked(frame, INSIDE_SITE)
    assert Mask("m", ((0, 0), (1, 0), (1, 1)), "site").as_dict()["source"] == "site"


# -- the handlers over HTTP: a timeline frame and a camera's snapshot ------------


async def http_picture(hub: Hub, path: str, token: str, **params: str) -> bytes:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{hub.web.url}{path}", params=params, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "image/jpeg"
        return await resp.read()


async def picture_lift(hub: Hub, camera_id: str) -> dict[str, Any]:
    asker, approver = person("asker", "operator"), person("approver", "supervisor")
    lift = await lifts.request_lift(hub.store, asker, camera_id, {"reason": "incident 4"})
    return await lifts.decide(hub.store, approver, lift["id"], True)


async def test_the_frame_route_masks_unless_a_lift_is_in_force(
    footage: tuple[Hub, float, Path],
) -> None:
    from csuhub.testing import api_token

    hub, t0, _ = footage
    hub.config.data["hub"]["web"]["port"] = 0
    web_hub = build_hub(hub.data_dir, dict(hub.config.data), web=True)
    await web_hub.start()
    try:
        token = await api_token(web_hub, "admin", name="frames")
        query = {"t": str(t0 + 1), "reason": "PV 3"}
        masked = await http_picture(web_hub, "/api/recordings/cam-a/frame.jpg", token, **query)
        (frame,) = gray_frames(masked)
        assert_masked(frame, INSIDE_SITE)
        lift = await picture_lift(web_hub, "cam-a")
        shown = await http_picture(web_hub, "/api/recordings/cam-a/frame.jpg", token, **query)
        values = region(gray_frames(shown)[0], INSIDE_SITE)
        assert max(values) - min(values) > 40  # the pattern, under the lift
        entries = await web_hub.store.call(
            lambda c: [
                (r["details"], r["outcome"])
                for r in c.execute(
                    "SELECT details, outcome FROM audit_log WHERE action='recording.frame' "
                    "AND outcome='ok' ORDER BY id"
                )
            ]
        )
        details = [json.loads(d) for d, _ in entries]
        assert [(d["masked"], d["lift"]) for d in details] == [(True, None), (False, lift["id"])]
    finally:
        await web_hub.stop()


async def test_the_snapshot_route_masks_a_live_camera(tmp_path: Path, ffmpeg_bin: str) -> None:
    from csuhub.testing import api_token, make_hub, wait_camera_state

    sim = {
        "id": "cam-sim",
        "driver": "simcam",
        "options": {"width": W, "height": H, "fps": 5, "clip_seconds": 4},
        "privacy_masks": [{"name": "house", "polygon": SITE_MASK}],
        "authorization": {"reference": "A-1", "issued": "2022-01-01", "expires": "2099-01-01"},
    }
    async with make_hub(tmp_path / "data", {"cameras": [sim]}, web=True) as hub:
        await wait_camera_state(hub, "cam-sim", "online", timeout=60)
        token = await api_token(hub, "admin", name="snaps")
        (frame,) = gray_frames(await http_picture(hub, "/api/cameras/cam-sim/snapshot.jpg", token))
        assert_masked(frame, INSIDE_SITE)
        values = region(frame, CONTROL)
        assert max(values) - min(values) > 40
        lift = await picture_lift(hub, "cam-sim")
        shown = await http_picture(hub, "/api/cameras/cam-sim/snapshot.jpg", token)
        values = region(gray_frames(shown)[0], INSIDE_SITE)
        assert max(values) - min(values) > 40
        # a wall's screen shows the room: the lift never reaches it
        secret = new_secret()
        await hub.store.users.add(
            "kiosk", kind="service", roles=["wall"], scope=["camera:cam-sim"],
            password_hash=None, now=time.time(),
        )  # fmt: skip
        await hub.store.create_token("kiosk-1", "wall", hash_secret(secret), "kiosk")
        (walled,) = gray_frames(
            await http_picture(hub, "/api/cameras/cam-sim/snapshot.jpg", secret)
        )
        assert_masked(walled, INSIDE_SITE)
        await lifts.end_lift(hub.store, person("approver", "supervisor"), lift["id"])
        (again,) = gray_frames(await http_picture(hub, "/api/cameras/cam-sim/snapshot.jpg", token))
        assert_masked(again, INSIDE_SITE)


async def test_playback_is_masked_and_raw_segments_of_a_masked_camera_refused(
    footage: tuple[Hub, float, Path],
) -> None:
    import aiohttp

    from csuhub.testing import api_token

    hub, t0, clip = footage
    hub.config.data["hub"]["web"]["port"] = 0
    web_hub = build_hub(hub.data_dir, dict(hub.config.data), web=True)
    await web_hub.start()
    try:
        token = await api_token(web_hub, "admin", name="player")
        headers = {"Authorization": f"Bearer {token}"}
        query = {"from": str(t0), "to": str(t0 + 2), "reason": "PV 9"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(
                f"{web_hub.web.url}/api/recordings/cam-a/play.mp4", params=query
            ) as resp:
                assert resp.status == 200, await resp.text()
                played = await resp.read()
            frames = gray_frames(played)
            assert frames
            for frame in frames:
                assert_masked(frame, INSIDE_SITE)
            assert_pattern(frames[0], gray_frames(clip)[0], CONTROL)
            # the unmasked camera still plays by stream copy; its raw segments are served
            async with http.get(
                f"{web_hub.web.url}/api/recordings/cam-b/play.mp4", params=query
            ) as resp:
                assert resp.status == 200
            segments = {s.camera_id: s.id for s in await web_hub.store.segments("cam-a")}
            segments |= {s.camera_id: s.id for s in await web_hub.store.segments("cam-b")}
            async with http.get(
                f"{web_hub.web.url}/api/segments/{segments['cam-a']}.mp4",
                params={"reason": "PV 9"},
            ) as resp:
                assert resp.status == 409
                assert "privacy masks" in (await resp.json())["error"]
            async with http.get(
                f"{web_hub.web.url}/api/segments/{segments['cam-b']}.mp4",
                params={"reason": "PV 9"},
            ) as resp:
                assert resp.status == 200
            # a picture lift unmasks pictures, never played footage or raw files (H2)
            lift = await picture_lift(web_hub, "cam-a")
            assert (await picture_plan(web_hub, "cam-a")).apply == ()
            async with http.get(
                f"{web_hub.web.url}/api/recordings/cam-a/play.mp4", params=query
            ) as resp:
                assert resp.status == 200, await resp.text()
                under_lift = gray_frames(await resp.read())
            for frame in under_lift:
                assert_masked(frame, INSIDE_SITE)
            async with http.get(
                f"{web_hub.web.url}/api/segments/{segments['cam-a']}.mp4",
                params={"reason": "PV 9"},
            ) as resp:
                assert resp.status == 409
        views = await web_hub.store.audit_trail.entries(action="recording.view")
        started = [json.loads(v["details"]) for v in views if v["outcome"] == "started"]
        assert started[0]["masked"] is True  # cam-a, then cam-b (unmasked), then cam-a
        assert started[-1]["masked"] is True and "lift" not in started[-1], lift
    finally:
        await web_hub.stop()
