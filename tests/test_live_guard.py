"""Live video's guards (review 14): camera credentials never reach a viewer or
the log, the grace expiry's race, sockets re-checked and capped."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csuhub.bus import EventBus
from csuhub.live.manager import LiveManager
from csuhub.live.redact import MASK, redact, secrets_of
from csuhub.live.upstream import Upstream
from csuhub.live.viewer import Viewer
from csuhub.supervisor import Supervisor
from csuhub.testing import api_token, make_hub

AUTH = {"reference": "R-1", "issued": "2022-01-01", "expires": "2099-01-01"}
SECRET = "S3cretPW"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_offline_reason_never_carries_the_cameras_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()  # closed: ffmpeg fails and names its input
    options = {
        "url": "rtsp://{username}:{password}@{host}:{port}/stream",
        "host": "127.0.0.1",
        "port": port,
        "username": "admin",
        "password": SECRET,
    }
    site = {
        "cameras": [{"id": "cam-x", "driver": "rtsp", "authorization": AUTH, "options": options}]
    }
    caplog.set_level(logging.DEBUG)
    async with make_hub(tmp_path / "hub", site, web=True, sweeping=False) as hub:
        token = await api_token(hub, "operator")
        url = f"{hub.web.url}/api/live/cam-x"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.ws_connect(url) as ws:
                msg = await asyncio.wait_for(ws.receive(), 20)
            async with http.get(url) as resp:
                status = await resp.json()
    assert json.loads(msg.data)["type"] == "offline"
    assert "rtsp://***@" in msg.data or "127.0.0.1" not in msg.data, msg.data
    assert SECRET not in msg.data
    assert SECRET not in json.dumps(status)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("rtsp://admin:pw@10.0.0.1:554/s: Connection refused", "rtsp://***@10.0.0.1:554/s"),
        ("[tcp @ 0x55] rtsp://u:p%40x@h/a failed", "rtsp://***@h/a failed"),
        ("http://cam/cgi?user=a&password=hunter22&x=1", "password=***&x=1"),
        ("Input #0, rtsp, from 'rtsp://h/x'", "Input #0, rtsp, from 'rtsp://h/x'"),
    ],
)
def test_redact_cuts_credentials(said: str, kept: str) -> None:
    assert kept in redact(said)


@given(
    user=st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/@:?#"),
        min_size=1,
        max_size=12,
    ),
    password=st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#"),
        min_size=3,
        max_size=20,
    ),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_streams_password_never_survives_redaction(
    user: str, password: str, before: str, after: str
) -> None:
    url = f"rtsp://{user}:{password}@127.0.0.1:554/stream"
    line = f"{before}{url}{after}: error {password}"
    out = redact(line, secrets_of(url))
    assert password not in out.replace(MASK, "\x00")


async def test_a_viewer_attaching_in_the_expiry_window_gets_a_running_upstream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def run(self: Upstream) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(Upstream, "run", run)
    hub: Any = type("Hub", (), {})()
    hub.supervisor = Supervisor(EventBus())
    live = LiveManager(hub)

    async def nop(_: Any) -> None:
        pass

    key = ("cam", "sub")
    first = Viewer(nop, nop)
    live.detach(live.attach(*key, first), first)
    await asyncio.sleep(0.01)
    live._stops.pop(key).cancel()
    live._expire(key)  # the grace timer's callback: the old task's cancel only scheduled
    second = Viewer(nop, nop)
    upstream = live.attach(*key, second)  # before the stop task first runs
    await asyncio.sleep(0.05)
    assert live.upstreams[key] is upstream
    assert hub.supervisor.running() == [upstream.name]
    await live.stop()
    assert hub.supervisor.running() == []


async def test_may_film_is_the_authorisation_live_view_obeys(tmp_path: Path) -> None:
    expired = {"reference": "R-0", "issued": "2015-01-01", "expires": "2020-01-01"}
    rtsp = {"url": "rtsp://127.0.0.1:9/s"}
    site = {
        "cameras": [
            {"id": "cam-ok", "driver": "rtsp", "authorization": AUTH, "options": rtsp},
            {"id": "cam-none", "driver": "rtsp", "options": rtsp},
            {"id": "cam-old", "driver": "rtsp", "authorization": expired, "options": rtsp},
        ]
    }
    async with make_hub(tmp_path / "hub", site, sweeping=False) as hub:
        cameras = hub.cameras
        assert cameras.may_film("cam-ok") is None
        assert "no prefectoral authorisation" in str(cameras.may_film("cam-none"))
        assert "2020-01-01" in str(cameras.may_film("cam-old"))
        assert "not adopted" in str(cameras.may_film("cam-nowhere"))
        # the hourly status says valid, but the date read today says expired: refused
        cameras.authorization["cam-old"] = cameras.authorization["cam-ok"]
        assert "2020-01-01" in str(cameras.may_film("cam-old"))
        for camera in ("cam-ok", "cam-none", "cam-old", "cam-nowhere"):
            assert hub.live.refusal(camera) == cameras.may_film(camera)
