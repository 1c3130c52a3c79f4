"""Live video's rules through a real hub (the GStreamer RTSP server, the hub's
ffmpeg): the law (no valid prefectoral authorisation, no live picture), the
``unsupported`` answer, a mask change mid-stream, and the hub stopping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_live import Watch, _audit, bearer, camera, live_pids, rtsp, site, watch

from csuhub.testing import api_token, make_hub

__all__ = ["rtsp"]  # the module's RTSP server fixture, shared

EXPIRED = {"reference": "R-0", "issued": "2015-01-01", "expires": "2020-01-01"}


def lawless_site(port: int) -> dict[str, Any]:
    config = site(port)
    config["cameras"] += [
        {k: v for k, v in camera("cam-x", port, "cam1").items() if k != "authorization"},
        camera("cam-e", port, "cam1") | {"authorization": EXPIRED},
    ]
    return config


@pytest.fixture
async def hub(tmp_path: Path, rtsp: int) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", lawless_site(rtsp), web=True, sweeping=False) as running:
        running.live.settings.grace = 0.5
        yield running


async def _closed(
    ws: aiohttp.ClientWebSocketResponse, into: Watch | None = None, timeout: float = 10
) -> aiohttp.WSMessage:
    """The close frame, after whatever came before it (taken ``into``)."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return msg
            if into is not None:
                into.take(msg)


async def test_a_camera_without_a_valid_authorisation_is_not_shown_live(hub: Any) -> None:
    token = await api_token(hub, "operator")
    base = hub.web.url
    async with aiohttp.ClientSession(headers=bearer(token)) as http:
        for cam, said in (("cam-x", "no prefectoral authorisation"), ("cam-e", "2020-01-01")):
            async with http.get(f"{base}/api/live/{cam}") as resp:  # plain GET: JSON
                assert resp.status == 403
                assert said in (await resp.json())["error"]
            async with http.ws_connect(f"{base}/api/live/{cam}?stream=main") as ws:
                msg = await _closed(ws)
                assert ws.close_code == 4003, msg
                assert said in msg.extra
    assert hub.live.upstreams == {} and live_pids(hub) == []  # ffmpeg never started
    refused = [r for r in await _audit(hub) if "error" in r.details]  # refused
    assert [(r.target, r.details["status"]) for r in refused] == [
        ("cam-x", 403),
        ("cam-x", 403),
        ("cam-e", 403),
        ("cam-e", 403),
    ]
    assert all(r.action == "live.start" for r in refused)
    assert "expired" in refused[-1].details["error"]


async def test_an_authorisation_expiring_while_streaming_stops_the_picture(hub: Any) -> None:
    hub.live.settings.mask_check = 0.3
    token = await api_token(hub, "operator")
    async with (
        aiohttp.ClientSession(headers=bearer(token)) as http,
        http.ws_connect(f"{hub.web.url}/api/live/cam-a") as ws,
    ):
        got = await watch(ws, Watch(), fragments=2)
        hub.cameras.entries["cam-a"].authorization_expires = "2021-06-30"  # a day passed
        await hub.cameras.check_authorizations()
        await watch(ws, got, text="offline", timeout=5)
        offline = next(t for t in got.texts if t["type"] == "offline")
        assert "expired on 2021-06-30" in offline["reason"]
        before = len(got.fragments)
        await asyncio.sleep(1.0)  # retried: still refused, no picture
        while True:
            try:
                async with asyncio.timeout(0.2):
                    got.take(await ws.receive())
            except TimeoutError:
                break
        assert len(got.fragments) == before and "online" not in [t["type"] for t in got.texts]
        assert live_pids(hub) == []


@pytest.mark.parametrize(("stream", "fallback"), [("main", "sub"), ("sub", "snapshot")])
async def test_a_viewer_that_cannot_play_the_codec_gets_the_fallback(
    hub: Any, stream: str, fallback: str
) -> None:
    token = await api_token(hub, "operator")
    async with (
        aiohttp.ClientSession(headers=bearer(token)) as http,
        http.ws_connect(f"{hub.web.url}/api/live/cam-b?stream={stream}") as ws,
    ):
        got = await watch(ws, Watch(), fragments=1)
        codec = got.texts[0]["codec"]
        # a browser whose MediaSource.isTypeSupported(mime) is false says so
        assert codec.startswith("avc1.")
        await ws.send_str(json.dumps({"type": "unsupported", "codec": codec}))
        msg = await _closed(ws, got)
        assert ws.close_code == 4002, msg
    assert got.texts[-1] == {"type": "unsupported", "codec": codec, "fallback": fallback}
    for _ in range(30):
        stops = [r for r in await _audit(hub) if r.action == "live.stop"]
        if stops:
            break
        await asyncio.sleep(0.1)
    assert stops[0].details["ended"] == "codec unsupported"


async def test_a_mask_drawn_while_streaming_restarts_the_stream_masked(hub: Any) -> None:
    hub.live.settings.mask_check = 0.3
    operator = await api_token(hub, "operator")
    admin = await api_token(hub, "admin")
    async with (
        aiohttp.ClientSession(headers=bearer(operator)) as http,
        http.ws_connect(f"{hub.web.url}/api/live/cam-a?stream=main") as ws,
    ):
        got = await watch(ws, Watch(), fragments=2)
        assert got.texts[0]["masked"] is False
        drawn = {"masks": [{"name": "door", "polygon": [[0, 0], [0.5, 0], [0.5, 1]]}]}
        async with http.put(
            f"{hub.web.url}/api/cameras/cam-a/masks", json=drawn, headers=bearer(admin)
        ) as resp:
            assert resp.status == 200
        await watch(ws, got, text="online", timeout=10)
        await watch(ws, got, fragments=1, timeout=15)
    kinds = [t["type"] for t in got.texts]
    assert kinds[1:4] == ["offline", "online", "init"]
    assert got.texts[1]["reason"] == "the privacy masks changed"
    assert got.texts[3]["masked"] is True and len(got.inits) == 2


async def test_the_hub_stopping_closes_viewers_as_going_away(tmp_path: Path, rtsp: int) -> None:
    async with make_hub(tmp_path / "hub", site(rtsp), web=True, sweeping=False) as hub:
        token = await api_token(hub, "operator")
        http = aiohttp.ClientSession(headers=bearer(token))
        ws = await http.ws_connect(f"{hub.web.url}/api/live/cam-a")
        await watch(ws, Watch(), fragments=1)
        reading = asyncio.create_task(_closed(ws, timeout=20))
    try:
        await reading
        assert ws.close_code == 1001
    finally:
        await http.close()


async def test_a_mask_drawn_hides_its_area_within_about_a_second(hub: Any) -> None:
    """A watched stream notices the database changed (mask_poll, 1 s) and
    reads its masks at once, long before the full check (set far off here)."""
    assert hub.live.settings.mask_poll == 1.0
    hub.live.settings.mask_check = 60.0
    operator = await api_token(hub, "operator")
    admin = await api_token(hub, "admin")
    async with (
        aiohttp.ClientSession(headers=bearer(operator)) as http,
        http.ws_connect(f"{hub.web.url}/api/live/cam-a") as ws,
    ):
        got = await watch(ws, Watch(), fragments=1)
        drawn = {"masks": [{"name": "door", "polygon": [[0, 0], [0.5, 0], [0.5, 1]]}]}
        async with http.put(
            f"{hub.web.url}/api/cameras/cam-a/masks", json=drawn, headers=bearer(admin)
        ) as resp:
            assert resp.status == 200
        began = asyncio.get_running_loop().time()
        await watch(ws, got, text="offline", timeout=10)
        took = asyncio.get_running_loop().time() - began
    assert got.texts[-1]["reason"] == "the privacy masks changed"
    assert took < 2.5, took
