"""Camera failures and returns in the logbook, from real state changes: an RTSP
camera on 127.0.0.1 with nothing listening goes offline, comes back when a
server answers on its port; a flapping camera writes a bounded number of
lines and the logbook ends on its true state."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

from csuhub.cameras.model import OFFLINE, ONLINE
from csuhub.events import CameraStateChanged
from csuhub.logbook.journal import read_day
from csuhub.logbook.listener import CameraLog, start_logbook
from csuhub.testing import build_hub, wait_camera_state

AUTH = {"reference": "R-1", "issued": "2022-01-01", "expires": "2099-01-01"}
SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _rtsp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Just enough RTSP for the health check: OPTIONS and DESCRIBE answered."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            cseq = next(
                (
                    line.split(b":", 1)[1].strip()
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"cseq:")
                ),
                b"1",
            )
            if head.startswith(b"DESCRIBE"):
                body = SDP.encode()
                writer.write(
                    b"RTSP/1.0 200 OK\r\nCSeq: %s\r\nContent-Type: application/sdp\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (cseq, len(body), body)
                )
            else:
                writer.write(b"RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: DESCRIBE\r\n\r\n" % cseq)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def test_a_camera_that_fails_then_returns_is_two_lines(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there yet: connection refused
    config = {
        "cameras": [
            {
                "id": "cam-rtsp",
                "driver": "rtsp",
                "options": {"url": "rtsp://{host}:{port}/cam1", "host": "127.0.0.1", "port": port},
                "authorization": AUTH,
            }
        ],
    }
    hub = build_hub(tmp_path / "hub", config, health_interval=0.2)
    stack = contextlib.AsyncExitStack()
    await start_logbook(hub, stack)  # before start: the first failure is seen
    await start_logbook(hub, stack)  # a second call adds no second listener
    server = None
    await hub.start()
    try:
        await wait_camera_state(hub, "cam-rtsp", OFFLINE, timeout=10)
        server = await asyncio.start_server(_rtsp, "127.0.0.1", port)
        await wait_camera_state(hub, "cam-rtsp", ONLINE, timeout=15)
        await hub.bus.drain()
        for _ in range(50):  # the writer task commits them in order
            book = await _today(hub)
            if len(_camera_lines(book)) >= 2:
                break
            await asyncio.sleep(0.05)
        lines = _camera_lines(book)
        assert [line["action"] for line in lines] == ["camera.offline", "camera.online"]
        offline, online = lines
        assert offline["who"] == "hub" and offline["target"] == "cam-rtsp"
        assert "refused" in offline["params"]["why"]
        assert offline["what"].startswith("Caméra hors service : ")
        assert online["params"]["down_s"] >= 0 and online["what"].startswith("Caméra rétablie")
        assert (await hub.store.audit_trail.verify({})).ok
    finally:
        await stack.aclose()
        await hub.stop()
        if server is not None:
            server.close()
            await server.wait_closed()


async def _today(hub: Any) -> Any:
    from csuhub.logbook.day import today

    tz = hub.config.settings.hub.timezone
    return await read_day(hub.store.audit_trail, hub.name, today(tz), tz)


def _camera_lines(book: Any) -> list[dict[str, Any]]:
    return [line for line in book.lines if line["action"].startswith("camera.")]


async def test_a_flapping_camera_is_rate_limited_on_a_real_hub(tmp_path: Path) -> None:
    config = {
        "cameras": [
            {"id": "cam-sim", "driver": "simcam", "options": {"fail": True}, "authorization": AUTH}
        ]
    }
    hub = build_hub(tmp_path / "hub", config)
    stack = contextlib.AsyncExitStack()
    await hub.start()
    try:
        await start_logbook(hub, stack)  # the hub started it: this adds nothing
        await wait_camera_state(hub, "cam-sim", OFFLINE, timeout=10)
        await hub.supervisor.cancel("camera-health:cam-sim")  # the test drives it now
        for i in range(20):
            await hub.cameras.set_state("cam-sim", ONLINE if i % 2 == 0 else OFFLINE, f"flap {i}")
        await hub.bus.drain()
        await stack.aclose()  # writes what is queued
        lines = _camera_lines(await _today(hub))
        # the hub listens from its start: the first failure is the first line;
        # then the burst allows 4 lines per window, the other changes are counted
        assert len(lines) == 4
        assert [line["action"] for line in lines] == [
            "camera.offline",
            "camera.online",
            "camera.offline",
            "camera.online",
        ]
    finally:
        await stack.aclose()
        await hub.stop()


async def test_the_settle_writes_the_true_state_with_the_changes_left_out() -> None:
    written: list[tuple[str, str, dict[str, Any]]] = []
    states: dict[str, str] = {}

    async def write(camera_id: str, action: str, params: dict[str, Any]) -> None:
        written.append((camera_id, action, params))

    log = CameraLog(write, states.get, window=0.3, burst=2)
    log.start()

    def change(new: str, old: str | None) -> None:
        states["c"] = new
        log.on_event(CameraStateChanged(camera_id="c", old_state=old, new_state=new, reason="r"))

    change("adopted", None)
    change(ONLINE, "adopted")  # first time online: no return, nothing written
    change(OFFLINE, ONLINE)  # written
    change(ONLINE, OFFLINE)  # written (burst of 2 reached)
    for _ in range(5):  # counted, not written
        change(OFFLINE, ONLINE)
        change(ONLINE, OFFLINE)
    change(OFFLINE, ONLINE)  # ends offline: the settle must say so
    await asyncio.sleep(0.5)
    await log.close()
    actions = [a for _, a, _ in written]
    assert actions == ["camera.offline", "camera.online", "camera.offline"]
    assert written[1][2]["down_s"] >= 0
    assert written[2][2]["flaps"] == 11
    assert "unstable" in written[2][2]["why"]
    # another camera is not limited by this one
    assert all(c == "c" for c, _, _ in written)


async def test_a_settle_to_the_state_already_written_writes_nothing() -> None:
    written: list[str] = []
    states: dict[str, str] = {}

    async def write(camera_id: str, action: str, params: dict[str, Any]) -> None:
        written.append(action)

    log = CameraLog(write, states.get, window=0.2, burst=1)
    log.start()
    for new, old in ((OFFLINE, ONLINE), (ONLINE, OFFLINE), (OFFLINE, ONLINE)):
        states["c"] = new
        log.on_event(CameraStateChanged(camera_id="c", old_state=old, new_state=new))
    await asyncio.sleep(0.35)
    await log.close()
    assert written == ["camera.offline"]


async def test_a_camera_held_back_is_settled_when_the_hub_stops() -> None:
    written: list[tuple[str, dict[str, Any]]] = []
    states: dict[str, str] = {}

    async def write(camera_id: str, action: str, params: dict[str, Any]) -> None:
        written.append((action, params))

    log = CameraLog(write, states.get, window=600.0, burst=1)
    log.start()
    for new, old in ((OFFLINE, ONLINE), (ONLINE, OFFLINE), (OFFLINE, ONLINE), (ONLINE, OFFLINE)):
        states["c"] = new
        log.on_event(CameraStateChanged(camera_id="c", old_state=old, new_state=new))
    await log.close()  # long before the window ends
    assert [a for a, _ in written] == ["camera.offline", "camera.online"]
    assert written[1][1]["flaps"] == 3 and written[1][1]["down_s"] >= 0
