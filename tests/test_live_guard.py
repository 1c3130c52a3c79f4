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
from test_walls_hub import scoped_token
from walls_helpers import PLUGINS
from walls_helpers import site as wall_site

from csuhub.bus import EventBus
from csuhub.live.manager import LiveManager
from csuhub.live.redact import MASK, redact, secrets_of
from csuhub.live.upstream import Upstream
from csuhub.live.viewer import Viewer
from csuhub.security.permissions import system_principal
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


def _wall_site() -> dict[str, Any]:
    """walls_helpers' wall ``mur`` (screen s1: cam-a and cam-b), its cameras
    authorised (live view needs it; their picture does not matter here)."""
    config = wall_site()
    for camera in config["cameras"]:
        camera["authorization"] = AUTH
    return config


async def _close_code(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> tuple[int, str]:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return int(ws.close_code or 0), str(msg.extra or "")


async def test_live_sockets_close_when_the_viewer_may_no_longer_see_the_camera(
    tmp_path: Path,
) -> None:
    async with make_hub(tmp_path / "hub", _wall_site(), plugins=PLUGINS, web=True) as hub:
        hub.live.settings.recheck = 0.2
        gone = await scoped_token(hub, "gone", "operator", ["*"])
        kept = await scoped_token(hub, "kept", "operator", ["*"])
        kiosk = await scoped_token(hub, "kiosk", "wall", ["wall:mur"])

        def url(camera: str) -> str:
            return f"{hub.web.url}/api/live/{camera}"

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        async with aiohttp.ClientSession() as http:
            revoked = await http.ws_connect(url("cam-a"), headers=bearer(gone))
            other = await http.ws_connect(url("cam-a"), headers=bearer(kept))
            leaving = await http.ws_connect(url("cam-a"), headers=bearer(kiosk))
            staying = await http.ws_connect(url("cam-b"), headers=bearer(kiosk))
            await hub.store.revoke_token("gone")
            assert await _close_code(revoked) == (4003, "the credential no longer authenticates")
            # from now on only a wall.changed makes the check
            hub.live.settings.recheck = 3600
            await asyncio.sleep(0.5)
            await hub.walls.set_screen("mur", "s1", system_principal("sup"), cameras=["cam-b"])
            code, why = await _close_code(leaving, timeout=5)
            assert (code, "scope" in why) == (4003, True), why
            await asyncio.sleep(0.3)
            assert not other.closed and not staying.closed
            for ws in (other, staying):
                await ws.close()
        for _ in range(50):  # every socket's live.stop, with why it ended
            records = await hub.store.audit_records(limit=1000)
            ended = sorted(r.details.get("ended") for r in records if r.action == "live.stop")
            if len(ended) == 4:
                break
            await asyncio.sleep(0.05)
        assert ended == sorted(
            [
                "the credential no longer authenticates",
                "the camera is no longer in the viewer's scope",
                "closed by the viewer",
                "closed by the viewer",
            ]
        )


async def test_the_sockets_of_one_credential_share_each_recheck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kiosk's tiles are several sockets of one credential, woken by the same
    tick: they share one resolution of it (not one store trip each), and a
    revocation still closes every one of them."""
    from csuhub.web.events import Listener

    resolved: list[float] = []
    recheck = Listener.recheck

    async def counted(self: Listener) -> Any:
        resolved.append(asyncio.get_running_loop().time())
        return await recheck(self)

    monkeypatch.setattr(Listener, "recheck", counted)
    async with make_hub(tmp_path / "hub", _wall_site(), plugins=PLUGINS, web=True) as hub:
        hub.live.settings.recheck = 0.25
        token = await scoped_token(hub, "tiles", "operator", ["*"])
        other = await scoped_token(hub, "other", "operator", ["*"])
        url = f"{hub.web.url}/api/live"
        async with aiohttp.ClientSession() as http:
            tiles = [
                await http.ws_connect(
                    f"{url}/{camera}", headers={"Authorization": f"Bearer {token}"}
                )
                for camera in ("cam-a", "cam-b", "cam-a")
            ]
            alone = await http.ws_connect(
                f"{url}/cam-b", headers={"Authorization": f"Bearer {other}"}
            )
            ticks = hub.live.rechecks.ticks
            resolved.clear()
            await asyncio.sleep(1.1)
            ticks = hub.live.rechecks.ticks - ticks
            assert ticks >= 3
            # two credentials: two resolutions a tick, not four
            assert len(resolved) <= 2 * ticks + 2, (len(resolved), ticks)
            assert not any(ws.closed for ws in (*tiles, alone))
            await hub.store.revoke_token("tiles")
            for ws in tiles:
                assert await _close_code(ws) == (4003, "the credential no longer authenticates")
            assert not alone.closed
            await alone.close()
            # nothing kept once the last resolution under way (a tick's, as the
            # sockets closed: it is shielded) has ended
            async with asyncio.timeout(5):
                while hub.live.rechecking:
                    await asyncio.sleep(0.02)


async def test_aiohttp_closing_a_live_socket_stops_its_direct_writes_first(
    tmp_path: Path,
) -> None:
    """The client's close frame makes aiohttp close the socket itself (its
    autoclose): the viewer has stopped writing straight to the transport by
    then, so no fragment can follow the server's close frame."""
    async with make_hub(tmp_path / "hub", _wall_site(), plugins=PLUGINS, web=True) as hub:
        token = await api_token(hub, "operator")
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{hub.web.url}/api/live/cam-a", headers={"Authorization": f"Bearer {token}"}
            )
            async with asyncio.timeout(5):
                while not hub.live.upstreams.get(("cam-a", "sub"), None) or not (
                    hub.live.upstreams[("cam-a", "sub")].viewers
                ):
                    await asyncio.sleep(0.02)
            (viewer,) = hub.live.upstreams[("cam-a", "sub")].viewers
            assert not viewer.socket_closed
            await ws.close()
            async with asyncio.timeout(5):
                while not viewer.closed:
                    await asyncio.sleep(0.02)
            assert viewer.socket_closed


async def test_live_sockets_are_capped_per_principal_and_in_all(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "hub", _wall_site(), plugins=PLUGINS, web=True) as hub:
        hub.live.settings.per_principal = 2
        hub.live.settings.max_sockets = 3
        one = await api_token(hub, "operator", name="one")
        two = await api_token(hub, "operator", name="two")
        url = f"{hub.web.url}/api/live/cam-a"
        async with aiohttp.ClientSession() as http:

            async def connect(token: str) -> aiohttp.ClientWebSocketResponse:
                return await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"})

            first = [await connect(one), await connect(one)]
            code, why = await _close_code(await connect(one))
            assert (code, "close one first" in why) == (1013, True), why
            third = await connect(two)
            code, why = await _close_code(await connect(two))
            assert (code, "on this hub" in why) == (1013, True), why  # 3 in all
            await first[0].close()
            for _ in range(50):  # counted out once its handler has ended
                again = await connect(one)
                await asyncio.sleep(0.1)
                if not again.closed:
                    break
            else:
                raise AssertionError("a closed socket was never counted out")
            for ws in (first[1], third, again):
                await ws.close()
        assert hub.live.gate.total == 0 or await _settled(hub)


async def _settled(hub: Any) -> bool:
    for _ in range(50):
        if hub.live.gate.total == 0:
            return True
        await asyncio.sleep(0.05)
    return False


def test_tile_problem_says_h265_from_the_stream_or_the_driver() -> None:
    from csuhub.live.fmp4 import CodecInfo

    cameras: Any = type("Cameras", (), {})()
    cameras.device_saved = {"cam-d": {"profiles": [{"name": "main", "codec": "H265"}]}}
    hub: Any = type("Hub", (), {})()
    hub.cameras = cameras
    live = LiveManager(hub)
    assert live.tile_problem("cam-a", "sub") is None  # nothing known
    assert live.tile_problem("cam-d", "main") == "h265"  # the driver's description
    assert live.tile_problem("cam-d", "sub") is None
    upstream = Upstream(live, "cam-a", "main")
    live.upstreams[("cam-a", "main")] = upstream
    upstream._online(b"init", CodecInfo("hvc1.1.6.L93.B0", 1920, 1080))
    assert live.tile_problem("cam-a", "main") == "h265"  # the running stream's init
    del live.upstreams[("cam-a", "main")]
    assert live.tile_problem("cam-a", "main") == "h265"  # remembered after it stops
    upstream._online(b"init", CodecInfo("avc1.64001f", 1920, 1080))
    assert live.tile_problem("cam-a", "main") is None
