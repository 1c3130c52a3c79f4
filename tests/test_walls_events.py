"""The ``/api/events`` WebSocket's guards, on a real hub over real HTTP: a
browser session's socket must come from the hub's own page (Origin); an open
socket stops when its token is revoked, its account disabled or its session
ended; a kiosk's camera scope follows what its wall shows now; open sockets
are capped per principal and in all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from walls_helpers import PLUGINS, site

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
