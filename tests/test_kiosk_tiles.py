"""The kiosk's tiles in real Chromium against a real hub whose cameras are
simulated (csuhub_simcam: real H.264 from ffmpeg, real JPEG snapshots): a
supervisor's push changes the page without a reload and a camera's offline/online
flap relabels a tile without rebuilding its player; an ended session stops
every player and socket; a codec the browser cannot play falls back to the
sub-stream, then to a snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS
from test_kiosk import shoot, wait_playing, wall_token

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.testing import api_token, make_hub, wait_camera_state
from csuhub.web.kiosk import assets_version
from csuhub.web.login import LOGINS_KEY

playwright = pytest.importorskip("playwright.async_api")

SIM = {"pattern": "smptebars", "width": 320, "height": 180, "fps": 10, "clip_seconds": 3}
CAMERAS = ("sim-1", "sim-2", "sim-3")
#: live video needs a camera that may film
AUTHORIZATION = {"reference": "TEST-2024-001", "issued": "2024-01-01", "expires": "2099-01-01"}


def site() -> dict[str, Any]:
    return {
        "hub": {"sessions": {"idle": "1h", "absolute": "1h"}},
        "cameras": [
            {"id": c, "driver": "simcam", "options": SIM, "authorization": AUTHORIZATION}
            for c in CAMERAS
        ],
        "walls": [
            {
                "id": "main",
                "screens": [
                    {
                        "id": "pair",
                        "layout": "grid",
                        "cameras": ["sim-1"],
                        "options": {"columns": 2, "rows": 1},
                    },
                    {
                        "id": "big",
                        "layout": "grid",
                        "cameras": ["sim-3"],
                        "options": {"columns": 1, "rows": 1, "stream": "main"},
                    },
                ],
            }
        ],
    }


@pytest.fixture
async def hub(tmp_path: Path, ffmpeg_bin: str) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", site(), web=True, sweeping=False) as running:
        for camera in CAMERAS:
            await wait_camera_state(running, camera, "online")
        yield running


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: run ./scripts/install.sh --test")
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def open_page(browser: Any, hub: Any, token: str, screen: str, init: str = "") -> Any:
    context = await browser.new_context(viewport={"width": 640, "height": 360})
    if init:
        await context.add_init_script(init)
    page = await context.new_page()
    sockets: list[Any] = []
    page.sockets = sockets  # type: ignore[attr-defined]
    page.on("websocket", lambda ws: sockets.append(ws))
    await page.goto(f"{hub.web.url}/wall/login?token={token}&next=/wall/main/{screen}")
    assert page.url == f"{hub.web.url}/wall/main/{screen}"
    await page.evaluate("window.sameDocument = 'yes'")
    return page


async def test_a_push_changes_the_tiles_without_a_reload(hub: Any, chromium: Any) -> None:
    page = await open_page(chromium, hub, await wall_token(hub), "pair")
    await wait_playing(page, 1)
    # the playing tile's <video>, marked: a rebuilt tile would lose the mark
    await page.evaluate("document.querySelector('.tile[data-camera=sim-1] video').dataset.mark = 1")
    supervisor = await api_token(hub, "supervisor")  # wall.edit: not an operator's
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{hub.web.url}/api/walls/main/push",
            headers={"Authorization": f"Bearer {supervisor}"},
            json={"camera": "sim-2", "screen": "pair"},
        ) as resp:
            assert resp.status == 200, await resp.text()
    await page.wait_for_selector(".tile[data-camera=sim-2]", timeout=5_000)
    await wait_playing(page, 2)
    assert await page.evaluate("window.sameDocument") == "yes"
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
    marked = "document.querySelector('.tile[data-camera=sim-1] video').dataset.mark"
    assert await page.evaluate(marked) == "1"
    # the register says offline, then online: the label changes, the player stays
    await hub.cameras.set_state("sim-1", "offline", "test")
    await page.wait_for_selector(".tile[data-camera=sim-1] .label:text('hors ligne')")
    assert await page.evaluate(marked) == "1"
    await hub.cameras.set_state("sim-1", "online", "test")
    await page.wait_for_selector(".tile[data-camera=sim-1] .label", state="hidden")
    assert await page.evaluate(marked) == "1"
    await wait_playing(page, 2)
    await shoot(page, "pushed")
    await page.context.close()


async def test_an_ended_session_stops_every_player_and_socket(hub: Any, chromium: Any) -> None:
    logins = hub.web.app[LOGINS_KEY]
    # a 6 s idle timeout: the page pings every 2 s (a third of it)
    logins.sessions.policy = replace(logins.sessions.policy, idle=6.0)
    token = await wall_token(hub)
    page = await open_page(chromium, hub, token, "pair")
    assert await page.evaluate("document.body.dataset.ping") == "2"
    await wait_playing(page, 1)
    open_sockets = [ws.url for ws in page.sockets if not ws.is_closed()]
    assert any("/api/events" in u for u in open_sockets), open_sockets
    assert any("/api/live/sim-1" in u for u in open_sockets), open_sockets
    assert await hub.store.revoke_token("screen-kiosk-main-1")
    await Accounts(hub.store).disable(system_principal("cli"), "kiosk-main-1")
    await page.wait_for_selector("#status:text('session terminée')", timeout=6_000)
    assert await page.locator(".tile").count() == 0
    assert await page.locator("video").count() == 0
    await asyncio.sleep(1)  # the close handshakes
    still = [ws.url for ws in page.sockets if not ws.is_closed()]
    assert still == [], still
    await shoot(page, "session-ended")
    await page.context.close()


NO_CODEC = "MediaSource.isTypeSupported = () => false;"


async def test_an_unplayable_main_stream_falls_back_to_sub_then_snapshot(
    hub: Any, chromium: Any
) -> None:
    page = await open_page(chromium, hub, await wall_token(hub), "big", init=NO_CODEC)
    await page.wait_for_selector(".tile[data-camera=sim-3][data-state=snapshot] img")
    live = [ws.url.split("/api/live/", 1)[1] for ws in page.sockets if "/api/live/" in ws.url]
    assert live == ["sim-3?stream=main", "sim-3?stream=sub"], live
    size = await page.evaluate(
        "() => { const i = document.querySelector('.tile img'); return i.naturalWidth; }"
    )
    assert size == 320
    stops = await hub.store.audit_trail.entries(action="live.stop")
    assert len(stops) == 2
    await shoot(page, "fallback-snapshot")
    await page.context.close()


async def test_the_fallback_decision(hub: Any, chromium: Any) -> None:
    page = await chromium.new_page()
    await page.goto(f"{hub.web.url}/wall/login")
    cases = await page.evaluate(
        """async (url) => {
            const { fallbackFor } = await import(url);
            return [["main", "sub"], ["main", null], ["main", "snapshot"],
                    ["sub", "snapshot"], ["sub", null], ["sub", "sub"]]
                .map(([stream, said]) => fallbackFor(stream, said));
        }""",
        f"/static/kiosk/{assets_version()}/player.js",
    )
    assert cases == ["sub", "sub", "snapshot", "snapshot", "snapshot", "snapshot"]
    await page.close()


async def test_a_snapshot_tile_refreshes_one_picture_at_a_time(
    tmp_path: Path, ffmpeg_bin: str, chromium: Any
) -> None:
    config = site()
    config["walls"][0]["screens"] = [
        {
            "id": "stills",
            "layout": "grid",
            "cameras": ["sim-1"],
            "options": {"columns": 1, "rows": 1, "snapshot": "1s"},
        }
    ]
    async with make_hub(tmp_path / "hub", config, web=True, sweeping=False) as hub:
        await wait_camera_state(hub, "sim-1", "online")
        token = await wall_token(hub)
        context = await chromium.new_context(viewport={"width": 640, "height": 360})
        page = await context.new_page()
        asked: list[str] = []
        pending: set[Any] = set()
        overlaps: list[int] = []

        def started(request: Any) -> None:
            if "/snapshot.jpg" in request.url:
                asked.append(request.url)
                pending.add(request)
                overlaps.append(len(pending))

        page.on("request", started)
        page.on("requestfinished", lambda r: pending.discard(r))
        page.on("requestfailed", lambda r: pending.discard(r))
        live: list[str] = []
        page.on("websocket", lambda ws: live.append(ws.url) if "/api/live/" in ws.url else None)
        await page.goto(f"{hub.web.url}/wall/login?token={token}&next=/wall/main/stills")
        tile = ".tile[data-camera=sim-1]"
        await page.wait_for_selector(f"{tile}[data-state=snapshot] img")
        assert await page.evaluate(f"document.querySelector('{tile} img').naturalWidth") == 320
        await asyncio.sleep(3.5)
        assert len(asked) >= 3, asked  # every second, not every 10
        assert len(set(asked)) == len(asked)  # a fresh URL each time: no cache answers
        assert all("?t=" in u for u in asked)
        assert max(overlaps) == 1  # never two at once
        assert live == [] and await page.locator("video").count() == 0
        # the camera fails: the tile says offline; it comes back: the label goes
        hub.cameras.drivers["sim-1"].options["fail"] = True
        await page.wait_for_selector(f"{tile}[data-state=offline] .label:text('hors ligne')")
        hub.cameras.drivers["sim-1"].options["fail"] = False
        await page.wait_for_selector(f"{tile}[data-state=snapshot] .label", state="hidden")
        await shoot(page, "snapshot-tile")
        await context.close()
        shots = await hub.store.audit_trail.entries(action="camera.snapshot")
        assert len(shots) >= 3 and {s["actor"] for s in shots} == {"kiosk-main-1"}
