"""The generic RTSP driver against the real GStreamer RTSP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from csuhub_rtsp import OPTIONS, RtspCamera
from csuhub_rtsp.rtsp import RtspClient, RtspError, strip_credentials

from csuhub.events import CameraRetryScheduled, CameraStateChanged
from csuhub.testing import build_hub, wait_camera_state

SERVER = Path(__file__).parent / "peers" / "gst_rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def start_server(
    *args: str, port: int = 0, mounts: str = "cam1,cam2"
) -> tuple[subprocess.Popen[str], int]:
    """A GStreamer RTSP server on 127.0.0.1 (``port=0``: a free one; else that one, e.g. to
    bring a stopped camera back on its address) serving ``mounts``; the live and kiosk
    tests start theirs here too."""
    proc = subprocess.Popen(
        [
            SYSTEM_PYTHON,
            str(SERVER),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--mounts",
            mounts,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY port="):
        proc.kill()
        raise AssertionError(f"GStreamer RTSP server did not start: {proc.stderr.read()}")
    return proc, int(line.split("=", 1)[1])


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("gst-launch-1.0") is None:
        pytest.fail("GStreamer RTSP server missing: run ./scripts/install.sh --test")
    open_proc, open_port = start_server()
    basic_proc, basic_port = start_server("--user", "op", "--password", "s3cret")
    digest_proc, digest_port = start_server(
        "--user", "op", "--password", "s3cret", "--auth", "digest"
    )
    yield {"open": open_port, "basic": basic_port, "digest": digest_port}
    for proc in (open_proc, basic_proc, digest_proc):
        stop_server(proc)


def camera(port: int, **extra: Any) -> RtspCamera:
    options = OPTIONS(
        {
            "url": "rtsp://{username}:{password}@{host}:{port}/cam1",
            "host": "127.0.0.1",
            "port": port,
            **extra,
        }
    )
    return RtspCamera(None, "cam-rtsp", options)


async def test_describe_without_and_with_auth(servers: dict[str, int]) -> None:
    described = await camera(servers["open"]).describe()
    assert described["profiles"][0]["codec"] == "h264"
    assert described["profiles"][0]["fps"] == 10
    for kind in ("basic", "digest"):
        cam = camera(servers[kind], username="op", password="s3cret")
        assert await cam.check_health() is True
        stream = await cam.stream()
        assert stream.url == f"rtsp://op:s3cret@127.0.0.1:{servers[kind]}/cam1"
        assert stream.input_options == {"rtsp_transport": "tcp"}


@pytest.mark.parametrize("kind", ["basic", "digest"])
async def test_wrong_password_is_unauthorized(servers: dict[str, int], kind: str) -> None:
    with pytest.raises(RtspError) as err:
        await camera(servers[kind], username="op", password="wrong").check_health()
    assert err.value.kind == "unauthorized"
    assert "refused the credentials" in str(err.value)
    with pytest.raises(RtspError) as err:
        await RtspClient(f"rtsp://127.0.0.1:{servers[kind]}/cam1").describe()
    assert err.value.kind == "unauthorized" and "needs credentials" in str(err.value)


async def test_unknown_mount_and_refused_port(servers: dict[str, int]) -> None:
    with pytest.raises(RtspError) as err:
        await RtspClient(f"rtsp://127.0.0.1:{servers['open']}/nope").describe()
    assert err.value.kind == "not_found"
    cam = camera(1)  # nothing listens on port 1
    with pytest.raises(RtspError) as err:
        await cam.check_health()
    assert err.value.kind == "refused"


async def test_the_url_sent_never_carries_credentials() -> None:
    url, user, password = strip_credentials("rtsp://o%40p:s%2Fx@10.0.0.5:554/live")
    assert (url, user, password) == ("rtsp://10.0.0.5:554/live", "o@p", "s/x")


def test_template_validation() -> None:
    import voluptuous as vol

    with pytest.raises(vol.Invalid, match="unknown placeholder"):
        OPTIONS({"url": "rtsp://{hots}/x"})
    with pytest.raises(vol.Invalid, match="rtsp://"):
        OPTIONS({"url": "http://{host}/x"})


async def test_recorded_by_ffmpeg_from_the_driver_url(
    servers: dict[str, int], tmp_path: Path, ffmpeg_bin: str
) -> None:
    stream = await camera(servers["basic"], username="op", password="s3cret").stream()
    out = tmp_path / "clip.mp4"
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_bin,
        "-hide_banner",
        "-loglevel",
        "error",
        "-rtsp_transport",
        "tcp",
        "-timeout",
        "5000000",
        "-i",
        stream.url,
        "-t",
        "1",
        "-c",
        "copy",
        str(out),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert out.stat().st_size > 1000


async def test_hub_reports_unauthorized_without_a_crash_loop(
    hub_factory: Any, servers: dict[str, int]
) -> None:
    config = {
        "cameras": [
            {
                "id": "cam-rtsp",
                "driver": "rtsp",
                "options": {
                    "url": "rtsp://{username}:{password}@{host}:{port}/cam1",
                    "host": "127.0.0.1",
                    "port": servers["basic"],
                },
                "credentials": {"username": "op", "password": "wrong"},
                "authorization": {
                    "reference": "R-1",
                    "issued": "2022-01-01",
                    "expires": "2099-01-01",
                },
            }
        ]
    }
    changes: list[CameraStateChanged] = []
    async with hub_factory(config) as hub:
        hub.bus.listen(CameraStateChanged, changes.append)
        await wait_camera_state(hub, "cam-rtsp", "offline", timeout=10)
        row = await hub.store.get_camera("cam-rtsp")
        assert row is not None
        assert row.state_reason.startswith(
            "unauthorized: the camera refused the credentials; next try at "
        )
        assert row.state_reason.endswith("(in 1 min)")
        await asyncio.sleep(2.5)  # the next try is a minute away: no new events
        assert hub.cameras.states["cam-rtsp"] == "offline"
        assert hub.supervisor.crashes.get("camera-health:cam-rtsp") is None
        allowed, why = hub.cameras.may_record("cam-rtsp")
        assert not allowed and why == "camera offline"
    assert [c.new_state for c in changes if c.camera_id == "cam-rtsp"] in ([], ["offline"])


async def test_hub_follows_a_camera_that_goes_away_and_returns(
    hub_factory: Any, tmp_path: Path
) -> None:
    proc, port = start_server()
    config = {
        "cameras": [
            {
                "id": "cam-rtsp",
                "driver": "rtsp",
                "options": {"url": "rtsp://{host}:{port}/cam2", "host": "127.0.0.1", "port": port},
                "authorization": {
                    "reference": "R-1",
                    "issued": "2022-01-01",
                    "expires": "2099-01-01",
                },
            }
        ]
    }
    try:
        hub = build_hub(tmp_path / "hub", config)
        hub.cameras.health_interval = 0.2  # before start: the first check's sleep uses it
        await hub.start()
        try:
            await wait_camera_state(hub, "cam-rtsp", "online", timeout=10)
            stop_server(proc)
            offline = await hub.bus.wait_for(
                CameraStateChanged,
                match={"camera_id": "cam-rtsp", "new_state": "offline"},
                timeout=10,
            )
            assert "refused" in offline.reason
            proc, _ = start_server(port=port)
            # health checks back off while the camera is away (1, 2, 4... s)
            await wait_camera_state(hub, "cam-rtsp", "online", timeout=40)
        finally:
            await hub.stop()
    finally:
        stop_server(proc)


async def test_a_busy_camera_503_is_asked_again_soon_not_backed_off(hub_factory: Any) -> None:
    """gst-rtsp-server answers 503 while it prepares a shared stream; a camera saying
    "busy, retry in 1 s" must not push the next check out to the 10 s backoff cap."""
    sdp = (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=busy\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
        "a=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n"
    )
    describes: list[float] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method = head.split(b" ", 1)[0]
                cseq = next(
                    (
                        line.split(b":", 1)[1].strip()
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"cseq:")
                    ),
                    b"1",
                )
                if method == b"DESCRIBE":
                    describes.append(asyncio.get_running_loop().time())
                if method == b"DESCRIBE" and len(describes) <= 4:
                    reply = (
                        b"RTSP/1.0 503 Service Unavailable\r\nCSeq: %s\r\nRetry-After: 1\r\n\r\n"
                    )
                    writer.write(reply % cseq)
                elif method == b"DESCRIBE":
                    body = sdp.encode()
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

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = {
        "cameras": [
            {
                "id": "cam-busy",
                "driver": "rtsp",
                "enabled": True,
                "options": {"url": "rtsp://{host}:{port}/cam1", "host": "127.0.0.1", "port": port},
                "authorization": {
                    "reference": "R-1",
                    "issued": "2022-01-01",
                    "expires": "2099-01-01",
                },
            }
        ]
    }
    try:
        async with hub_factory(config) as hub:
            await wait_camera_state(hub, "cam-busy", "online", timeout=20)
            # four 503s, each "retry in 1 s": online after ~4 s, where the exponential
            # backoff (1 + 2 + 4 + 8 s) would have taken 15 s
            assert len(describes) >= 5  # four refused, then the one that put it online
            assert describes[4] - describes[0] < 7
    finally:
        server.close()
        await server.wait_closed()


async def test_refused_credentials_back_off_to_minutes(
    hub_factory: Any, servers: dict[str, int], tmp_path: Path
) -> None:
    """A camera refusing the credentials was asked every 10 s (two connections each time),
    which locks accounts on real cameras: now 1, 2, 5, 10 x the base (60 s in production;
    0.2 s here), each announced with when the next try is."""
    config = {
        "cameras": [
            {
                "id": "cam-rtsp",
                "driver": "rtsp",
                "options": {
                    "url": "rtsp://{username}:{password}@{host}:{port}/cam1",
                    "host": "127.0.0.1",
                    "port": servers["digest"],
                },
                "credentials": {"username": "op", "password": "wrong"},
                "authorization": {
                    "reference": "R-1",
                    "issued": "2022-01-01",
                    "expires": "2099-01-01",
                },
            }
        ]
    }
    hub = build_hub(tmp_path / "hub", config)
    hub.cameras.auth_backoff = 0.2
    retries: list[tuple[float, CameraRetryScheduled]] = []
    hub.bus.listen(
        CameraRetryScheduled,
        lambda e: retries.append((asyncio.get_running_loop().time(), e)),
    )
    await hub.start()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(retries) < 5 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await hub.stop()
    waits = [e.retry_in for _, e in retries[:5]]
    assert waits == pytest.approx([0.2, 0.4, 1.0, 2.0, 2.0])  # capped at 10x
    for (when, event), (later, _) in itertools.pairwise(retries[:5]):
        assert later - when >= event.retry_in - 0.01  # no attempt before the time it said
        assert event.reason == "unauthorized: the camera refused the credentials"
        assert abs(event.retry_at - event.time_fired - event.retry_in) < 0.05
    assert hub.cameras.states["cam-rtsp"] == "offline"
