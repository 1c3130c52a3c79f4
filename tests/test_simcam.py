"""Simulated cameras do what a real camera does on the paths the demo shows.

Real parts: ffmpeg encodes the clip and cuts the snapshot, the hub serves it
through its real aiohttp app with a real token, and ffprobe reads the JPEG.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from csuhub_simcam import SimulatedCamera

from csuhub.security.tokens import hash_secret
from csuhub.testing import make_hub, wait_camera_state

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

SIM = {"pattern": "smptebars", "width": 320, "height": 180, "fps": 5, "clip_seconds": 3}


def _config(**options: Any) -> dict[str, Any]:
    # No authorisation: the camera is online but not recorded, so the only ffmpeg
    # runs are the clip's encoding and the snapshots themselves.
    return {
        "hub": {"name": "Simcam", "web": {"host": "127.0.0.1", "port": 0}},
        "cameras": [{"id": "cam-sim", "driver": "simcam", "options": {**SIM, **options}}],
    }


def _probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    streams: list[dict[str, Any]] = json.loads(out)["streams"]
    return streams[0]


async def test_snapshot_endpoint_answers_a_jpeg_of_the_clip(tmp_path: Path) -> None:
    """``GET /api/cameras/{id}/snapshot.jpg`` on a demo camera answered 409 ("this
    camera's driver cannot take snapshots"); it is now a JPEG of the clip, audited."""
    async with make_hub(tmp_path / "data", _config(), web=True) as hub:
        await wait_camera_state(hub, "cam-sim", "online", timeout=60)
        await hub.store.create_token("viewer-1", "viewer", hash_secret("csu_view"))
        url = f"{hub.web.url}/api/cameras/cam-sim/snapshot.jpg"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Authorization": "Bearer csu_view"}) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.content_type == "image/jpeg"
                assert resp.headers["Cache-Control"] == "no-store"
                image = await resp.read()
            async with session.get(url) as resp:
                assert resp.status == 401  # the same access rule as a real camera's
        assert hub.processes.pids() == []  # the snapshot's ffmpeg is gone
        trail = [r.action for r in await hub.store.audit_records(target="cam-sim")]
    assert image.startswith(b"\xff\xd8") and image.endswith(b"\xff\xd9")
    jpeg = tmp_path / "snap.jpg"
    jpeg.write_bytes(image)
    assert _probe(jpeg) == {"codec_name": "mjpeg", "width": 320, "height": 180}
    assert "camera.snapshot" in trail


async def test_snapshots_follow_the_clock_through_the_whole_clip(tmp_path: Path) -> None:
    """Every position a snapshot may be cut at decodes to a frame, the last one included."""
    async with make_hub(tmp_path / "data", _config(), web=False) as hub:
        await wait_camera_state(hub, "cam-sim", "online", timeout=60)
        driver = hub.cameras.drivers["cam-sim"]
        assert isinstance(driver, SimulatedCamera)
        positions = {driver.snapshot_position(t / 4) for t in range(0, 40)}
        assert min(positions) == 0.0 and max(positions) < SIM["clip_seconds"] - 0.9
        for position in (0.0, max(positions)):
            proc = subprocess.run(
                driver.snapshot_args(position), capture_output=True, timeout=30, check=True
            )
            assert proc.stdout.startswith(b"\xff\xd8")
        first, second = await driver.snapshot(), await driver.snapshot()
        assert first.startswith(b"\xff\xd8") and second.startswith(b"\xff\xd8")


async def test_a_clip_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "data", _config(), web=False) as hub:
        await wait_camera_state(hub, "cam-sim", "online", timeout=60)
        driver = hub.cameras.drivers["cam-sim"]
        driver.clip.unlink()
        with pytest.raises(Exception, match="not encoded yet"):
            await driver.snapshot()
