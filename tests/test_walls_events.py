"""The ``/api/events`` WebSocket's guards, on a real hub over real HTTP: a
browser session's socket must come from the hub's own page (Origin); an open
socket stops when its token is revoked, its account disabled or its session
ended; a kiosk's camera scope follows what its wall shows now; open sockets
are capped per principal and in all."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_walls_hub import call, ready, scoped_token
from walls_helpers import PLUGINS, site

import csuhub.web.events as events
from csuhub.api import Priority
from csuhub.events import CameraStateChanged
from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.testing import api_token, make_hub

PASSWORD = "a long enough password for the wall events"
CLI = system_principal("cli")


def ws_url(hub: Any, query: str = "") -> str:
    return hub.web.url.replace("http", "ws", 1) + "/api/events" + query


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def browser_login(hub: Any, name: str, **account: Any) -> tuple[aiohttp.ClientSession, Any]:
    await Accounts(hub.store).add(CLI, name, password=PASSWORD, **account)
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(
        f"{hub.web.url}/api/auth/login", json={"user": name, "password": PASSWORD}
    ) as resp:
        assert resp.status == 200, await resp.text()
        return http, await resp.json()


async def closed_with(ws: Any, limit: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(limit):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return ws.close_code
            if msg.type is aiohttp.WSMsgType.ERROR:
                return None


async def test_a_sessions_socket_needs_the_hubs_own_origin(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        http, _ = await browser_login(hub, "olga", roles=["operator"], scope=["*"])
        async with http:
            foreign = hub.web.url.rsplit(":", 1)[0] + ":1"  # the same host, another port
            for headers in ({"Origin": foreign}, {"Origin": "https://evil.example"}, {}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(ws_url(hub), headers=headers)
                assert refused.value.status == 403, headers
            async with http.ws_connect(ws_url(hub), origin=hub.web.url) as ws:
                hello = json.loads((await ws.receive()).data)
                assert hello["principal"] == "olga"
        # a token is no browser's ambient credential: no Origin needed
        token = await api_token(hub, "operator")
        async with (
            aiohttp.ClientSession() as plain,
            plain.ws_connect(ws_url(hub), headers=bearer(token)) as ws,
        ):
            assert json.loads((await ws.receive()).data)["event"] == "hello"


async def test_open_sockets_stop_when_their_credential_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "RECHECK", 0.2)
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        revoked = await scoped_token(hub, "gone", "operator", ["*"])
        kept = await scoped_token(hub, "kept", "operator", ["*"])
        olga, me = await browser_login(hub, "olga", roles=["operator"], scope=["*"])
        paul, _ = await browser_login(hub, "paul", roles=["operator"], scope=["*"])
        async with aiohttp.ClientSession() as http, olga, paul:
            by_token = await http.ws_connect(ws_url(hub), headers=bearer(revoked))
            other = await http.ws_connect(ws_url(hub), headers=bearer(kept))
            by_session = await olga.ws_connect(ws_url(hub), origin=hub.web.url)
            disabled = await paul.ws_connect(ws_url(hub), origin=hub.web.url)
            for ws in (by_token, other, by_session, disabled):
                await ws.receive()  # hello
            await hub.store.revoke_token("gone")
            assert await closed_with(by_token) == events.UNAUTHORISED
            async with olga.post(
                f"{hub.web.url}/api/auth/logout",
                headers={"X-CSRF-Token": me["csrf_token"], "Origin": hub.web.url},
            ) as resp:
                assert resp.status in (200, 204), await resp.text()
            assert await closed_with(by_session) == events.UNAUTHORISED
            await Accounts(hub.store).disable(CLI, "paul")
            assert await closed_with(disabled) == events.UNAUTHORISED
            # the working token's socket carries on
            await asyncio.sleep(0.5)
            assert not other.closed
            await other.close()


async def test_a_kiosks_scope_follows_its_wall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cam-c is on no screen of ``mur`` until an incident puts it on the
    spotlight; then the kiosk hears of it, and no longer once it has gone."""
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        await ready(hub)
        kiosk = await scoped_token(hub, "kiosk", "wall", ["wall:mur"])
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                ws_url(hub, "?events=camera_state_changed,wall.changed"), headers=bearer(kiosk)
            ) as ws,
        ):
            await ws.receive()  # hello

            async def heard(camera: str) -> bool:
                hub.bus.fire(CameraStateChanged(camera_id=camera, old_state="a", new_state="b"))
                hub.bus.fire(CameraStateChanged(camera_id="cam-a", old_state="a", new_state="b"))
                async with asyncio.timeout(5):
                    while True:
                        frame = json.loads((await ws.receive()).data)
                        if frame["event"] != "camera_state_changed":
                            continue
                        if frame["camera_id"] == camera:
                            await ws.receive()  # cam-a's, which follows
                            return True
                        if frame["camera_id"] == "cam-a":
                            return False

            assert not await heard("cam-c")
            incident = await call(hub, "k1", Priority.HIGH)
            await hub.bus.drain()
            assert "cam-c" in incident.camera_ids
            assert await heard("cam-c")
            await hub.incidents.close(incident.id, "done", system_principal("sup"))
            await hub.bus.drain()
            spot = hub.walls.wall("mur").screens["spot"].state
            if spot.incident is not None:  # held (hold option): let it go now
                await hub.walls.tick(time.time() + 86400)
                await hub.bus.drain()
            assert not await heard("cam-c")


async def test_sockets_are_capped_per_principal_and_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "PER_PRINCIPAL", 2)
    monkeypatch.setattr(events, "MAX_SOCKETS", 3)
    async with make_hub(tmp_path / "hub", site(), plugins=PLUGINS, web=True) as hub:
        one = await api_token(hub, "operator", name="one")
        two = await api_token(hub, "operator", name="two")
        async with aiohttp.ClientSession() as http:
            first = [await http.ws_connect(ws_url(hub), headers=bearer(one)) for _ in range(2)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(ws_url(hub), headers=bearer(one))
            assert refused.value.status == 429
            third = await http.ws_connect(ws_url(hub), headers=bearer(two))
            with pytest.raises(aiohttp.WSServerHandshakeError) as full:
                await http.ws_connect(ws_url(hub), headers=bearer(two))
            assert full.value.status == 429  # 3 in all
            await first[0].close()
            for _ in range(50):  # the server counts the socket out once its handler ends
                try:
                    again = await http.ws_connect(ws_url(hub), headers=bearer(one))
                    break
                except aiohttp.WSServerHandshakeError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("a closed socket was never counted out")
            for ws in (first[1], third, again):
                await ws.close()
