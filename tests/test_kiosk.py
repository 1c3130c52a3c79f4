"""The kiosk in real Chromium (Debian's, driven by Playwright): a real hub on
127.0.0.1, cameras served by the GStreamer RTSP server, the hub's live
video over WebSockets into Media Source Extensions, a call through the signed
webhook moving the spotlight screen. Screenshots go to ``$ARTIFACTS_DIR``
(default ``artifacts/screenshots`` at the repository's root), which CI keeps."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from csuhub_webhook.signing import signature
from test_cameras_rtsp import start_server as start_rtsp
from test_cameras_rtsp import stop_server

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.security.tokens import hash_secret, new_secret
from csuhub.testing import api_token, make_hub, wait_camera_state

playwright = pytest.importorskip("playwright.async_api")

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
SCREENSHOTS = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "artifacts") / "screenshots"
SECRET = "le-secret-partage-du-cad-pour-le-mur"
#: Lille, Grand-Place; cam-a and cam-b near it, cam-c and cam-d far
ORIGIN = (50.6367, 3.0633)
PLACES = {"cam-a": 40.0, "cam-b": 150.0, "cam-c": 4000.0, "cam-d": 6000.0}
MOUNTS = {"cam-a": "cam1", "cam-b": "cam2", "cam-c": "cam3", "cam-d": "cam4"}
#: live video needs a camera that may film (its prefectoral authorisation)
AUTHORIZATION = {"reference": "TEST-2024-001", "issued": "2024-01-01", "expires": "2099-01-01"}


def north(metres: float) -> dict[str, float]:
    return {"lat": ORIGIN[0] + metres / 111_195.0, "lon": ORIGIN[1]}


def site(port: int) -> dict[str, Any]:
    cameras = [
        {
            "id": camera,
            "driver": "rtsp",
            "options": {"url": f"rtsp://127.0.0.1:{port}/{mount}"},
            "location": north(PLACES[camera]),
            "authorization": AUTHORIZATION,
        }
        for camera, mount in MOUNTS.items()
    ]
    return {
        "hub": {"sessions": {"idle": "1h", "absolute": "1h"}},
        "cameras": cameras,
        "incidents": {"radius": 1000, "max_cameras": 2},
        "call_lines": [{"id": "cad", "type": "webhook", "options": {"secret": SECRET}}],
        "walls": [
            {
                "id": "main",
                "name": "Mur principal",
                "screens": [
                    {
                        "id": "quad",
                        "layout": "grid",
                        "cameras": list(MOUNTS),
                        "options": {"columns": 2, "rows": 2},
                    },
                    {
                        "id": "spot",
                        "layout": "spotlight",
                        "cameras": ["cam-d"],
                        "options": {"tiles": 2, "hold": 0},
                    },
                    {
                        "id": "loop",
                        "layout": "carousel",
                        "cameras": ["cam-a", "cam-b"],
                        "options": {"dwell": "3s"},
                    },
                ],
            },
            {"id": "other", "screens": [{"id": "s1", "layout": "grid", "cameras": ["cam-c"]}]},
        ],
    }


def start_server(port: int = 0) -> tuple[subprocess.Popen[str], int]:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("gst-launch-1.0") is None:
        pytest.fail("GStreamer RTSP server missing: run ./scripts/install.sh --test")
    return start_rtsp(port=port, mounts=",".join(MOUNTS.values()))


@pytest.fixture(scope="module")
def rtsp() -> Iterator[int]:
    proc, port = start_server()
    yield port
    stop_server(proc)


@pytest.fixture
async def hub(tmp_path: Path, rtsp: int) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", site(rtsp), web=True, sweeping=False) as running:
        for camera in MOUNTS:
            await wait_camera_state(running, camera, "online")
        yield running


async def wall_token(hub: Any, wall: str = "main", roles: tuple[str, ...] = ("wall",)) -> str:
    """A screen's token: a service account scoped to its wall, holding ``roles``."""
    account = f"kiosk-{wall}-{len(roles)}"
    await Accounts(hub.store).add(
        system_principal("cli"), account, roles=list(roles), scope=[f"wall:{wall}"], service=True
    )
    secret = new_secret()
    await hub.store.create_token(f"screen-{account}", "wall", hash_secret(secret), account)
    return secret


async def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"kiosk-{name}.png"))


async def open_kiosk(browser: Any, hub: Any, token: str, screen: str) -> tuple[Any, Any]:
    context = await browser.new_context(viewport={"width": 960, "height": 540})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.problems = problems  # type: ignore[attr-defined]
    await page.goto(f"{hub.web.url}/wall/login?token={token}&next=/wall/main/{screen}")
    return context, page


async def wait_playing(page: Any, count: int, timeout: float = 15_000) -> None:
    """Until ``count`` tiles play and have shown a few frames each."""
    await page.wait_for_function(
        "n => [...document.querySelectorAll('.tile[data-state=playing] video')]"
        ".filter(v => v.getVideoPlaybackQuality().totalVideoFrames >= 5).length === n",
        arg=count,
        timeout=timeout,
    )


PLAYBACK = """() => [...document.querySelectorAll('.tile')].map(t => {
  const v = t.querySelector('video');
  return {camera: t.dataset.camera || null, state: t.dataset.state,
          time: v ? v.currentTime : null,
          frames: v ? v.getVideoPlaybackQuality().totalVideoFrames : null};
})"""


async def test_a_screen_of_four_tiles_plays_live(hub: Any, chromium: Any) -> None:
    token = await wall_token(hub)
    context, page = await open_kiosk(chromium, hub, token, "quad")
    # the token was exchanged once: neither the address nor the page keeps it
    assert page.url == f"{hub.web.url}/wall/main/quad"
    assert token not in await page.content()
    [cookie] = await context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != token
    await wait_playing(page, 4)
    first = {t["camera"]: t for t in await page.evaluate(PLAYBACK)}
    assert set(first) == set(MOUNTS)
    await asyncio.sleep(3)
    later = {t["camera"]: t for t in await page.evaluate(PLAYBACK)}
    for camera in MOUNTS:
        assert later[camera]["time"] > first[camera]["time"] + 1, (camera, first, later)
        assert later[camera]["frames"] > first[camera]["frames"] + 5, (camera, first, later)
        # low latency: the playhead is near the newest frame
    lag = await page.evaluate(
        "() => [...document.querySelectorAll('video')].map(v => "
        "v.buffered.end(v.buffered.length - 1) - v.currentTime)"
    )
    assert max(lag) < 2.5, lag
    await shoot(page, "quad-playing")
    assert not page.problems, page.problems  # type: ignore[attr-defined]
    await context.close()


def signed(body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Csuhub-Timestamp": stamp,
        "X-Csuhub-Signature": "sha256=" + signature(SECRET, stamp, raw),
    }, raw


SHOWN = "() => [...document.querySelectorAll('.tile')].map(t => t.dataset.camera || '').join(',')"


async def test_the_spotlight_follows_a_call_and_reverts(hub: Any, chromium: Any) -> None:
    token = await wall_token(hub)
    context, page = await open_kiosk(chromium, hub, token, "spot")
    await page.wait_for_function(f"() => ({SHOWN})() === 'cam-d'", timeout=10_000)
    await wait_playing(page, 1)
    await shoot(page, "spot-idle")
    call = {"external_id": "K-1", "location": {"lat": ORIGIN[0], "lon": ORIGIN[1]}}
    async with aiohttp.ClientSession() as http:
        headers, body = signed(call)
        async with http.post(
            f"{hub.web.url}/api/call-lines/cad/calls", headers=headers, data=body
        ) as resp:
            answer = await resp.json()
            assert resp.status == 201, answer
        posted = time.monotonic()
        assert [c["id"] for c in answer["cameras"]] == ["cam-a", "cam-b"]
        # the spotlight screen switches by itself, without a reload, within 2 s
        await page.wait_for_function(f"() => ({SHOWN})() === 'cam-a,cam-b'", timeout=2_000)
        assert time.monotonic() - posted < 2.0
        await wait_playing(page, 2)
        await shoot(page, "spot-incident")
        operator = await api_token(hub, "operator")
        async with http.post(
            f"{hub.web.url}/api/incidents/{answer['incident']}/close",
            headers={"Authorization": f"Bearer {operator}"},
            json={"outcome": "résolu"},
        ) as resp:
            assert resp.status == 200, await resp.text()
    await page.wait_for_function(f"() => ({SHOWN})() === 'cam-d'", timeout=5_000)
    await wait_playing(page, 1)
    await shoot(page, "spot-reverted")
    assert not page.problems, page.problems  # type: ignore[attr-defined]
    await context.close()


async def test_a_carousel_cycles_on_the_page_in_english(hub: Any, chromium: Any) -> None:
    context = await chromium.new_context(viewport={"width": 640, "height": 360})
    page = await context.new_page()
    token = await wall_token(hub)
    await page.goto(f"{hub.web.url}/wall/login?token={token}&next=/wall/main/loop%3Flang%3Den")
    assert page.url.endswith("/wall/main/loop?lang=en")
    assert await page.evaluate("document.documentElement.lang") == "en"
    playing = (
        "c => { const t = document.querySelector('.tile[data-state=playing]');"
        " return t && t.dataset.camera === c"
        " && t.querySelector('video').getVideoPlaybackQuality().totalVideoFrames >= 3; }"
    )
    await page.wait_for_function(playing, arg="cam-a", timeout=10_000)
    await page.wait_for_function(playing, arg="cam-b", timeout=8_000)
    await shoot(page, "carousel")
    await page.wait_for_function(playing, arg="cam-a", timeout=8_000)
    assert await page.locator(".tile").count() == 1
    await context.close()


async def test_a_dropped_camera_shows_offline_and_plays_again(
    tmp_path: Path, chromium: Any
) -> None:
    proc, port = start_server()
    try:
        async with make_hub(
            tmp_path / "hub", site(port), web=True, sweeping=False, health_interval=1.0
        ) as running:
            settings = running.live.settings
            settings.retry_initial, settings.retry_max, settings.rtsp_timeout = 0.3, 1.0, 2.0
            await wait_camera_state(running, "cam-d", "online")
            context, page = await open_kiosk(chromium, running, await wall_token(running), "spot")
            await wait_playing(page, 1)
            stop_server(proc)
            await page.wait_for_selector(
                ".tile[data-camera=cam-d] .label:text('hors ligne')", timeout=15_000
            )
            await shoot(page, "offline")
            proc, _ = start_server(port)
            await page.wait_for_function(
                "() => { const v = document.querySelector('.tile[data-camera=cam-d] video');"
                " return v && !v.paused && v.getVideoPlaybackQuality().totalVideoFrames >= 5; }",
                timeout=20_000,
            )
            await page.wait_for_selector(".tile[data-camera=cam-d] .label", state="hidden")
            await shoot(page, "recovered")
            await context.close()
    finally:
        stop_server(proc)
