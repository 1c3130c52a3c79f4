"""Cameras against real ipycam ONVIF cameras inside network namespaces.

The hub's side runs in the "hub" namespace (every socket it opens is created
inside ``netns.entered``); the cameras run in the "cam" namespace. Multicast
never leaves these namespaces.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import math
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from csuhub_onvif import wsdiscovery
from csuhub_onvif.driver import OnvifCamera, OnvifOperationError
from peers import ipycam_peer, netns

from csuhub.cameras.model import AdoptionError
from csuhub.events import CameraAuthorizationChanged, CameraStateChanged
from csuhub.hub import Hub
from csuhub.protocols import PtzUnsupported
from csuhub.security.tokens import hash_secret

pytestmark = pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")

USER, PASSWORD = "admin", "s3cret"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three ipycam cameras; the first requires WS-Security credentials."""
    if ipycam_peer.find_python() is None:
        pytest.fail("ipycam venv missing: run ./scripts/install.sh --test")
    workdir = tmp_path_factory.mktemp("ipycam")
    with netns.NetnsPair() as net:
        secured = ipycam_peer.start_cameras(net, 1, workdir / "a", username=USER, password=PASSWORD)
        clip = workdir / "a" / "clip.mp4"
        others = [
            ipycam_peer.IpycamCamera(
                net=net,
                ns=net.cam,
                ip=net.add_cam_address(i),
                workdir=workdir / f"c{i}",
                clip=clip,
                python=ipycam_peer.find_python(),
                onvif_port=8080 + i,
                rtsp_port=8554 + i,
                name=f"cam{i}",
            ).start()
            for i in (1, 2)
        ]
        for cam in others:
            cam.wait_ready()
        yield {"net": net, "cams": secured + others, "workdir": workdir}


def driver_for(cam: Any, **options: Any) -> OnvifCamera:
    return OnvifCamera(
        None,
        "cam-test",
        {
            "host": cam.ip,
            "port": cam.onvif_port,
            "username": options.get("username", USER),
            "password": options.get("password", PASSWORD),
            "profile": "main",
            "transport": "tcp",
            "timeout": 5.0,
        },
    )


async def ipycam_ptz(cam: Any) -> dict[str, Any]:
    """The camera's own PTZ state (ipycam's HTTP API), not what the hub believes."""
    headers = {"Authorization": aiohttp.encode_basic_auth(cam.username, cam.password)}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"http://{cam.ip}:{cam.onvif_port}/api/ptz") as resp:
            assert resp.status == 200
            return await resp.json()


def test_probe_reply_sample_parses() -> None:
    sample = (Path(__file__).parent / "peers" / "ipycam_probe_reply.xml").read_bytes()
    (match,) = wsdiscovery.parse_reply(sample, "10.0.0.2")
    assert match.ref.startswith("urn:uuid:")
    assert match.xaddrs[0].endswith("/onvif/device_service")


def test_csuhub_discover_finds_every_camera_by_multicast(lab: dict[str, Any]) -> None:
    net = lab["net"]
    result = subprocess.run(
        [
            *netns.exec_args(net.hub),
            sys.executable,
            "-m",
            "csuhub",
            "discover",
            "--timeout",
            "1.5",
            "--interface",
            net.hub_ip,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    found = {e["address"] for e in events if e["event"] == "camera_found"}
    assert found == {cam.ip for cam in lab["cams"]}
    assert all(e["driver"] == "onvif" for e in events if e["event"] == "camera_found")
    assert events[-1] == {"event": "scan_done", "found": 3, "timeout_s": 1.5}
    assert max(e["elapsed_s"] for e in events if e["event"] == "camera_found") < 1.0


def test_onvif_driver_against_ipycam(lab: dict[str, Any]) -> None:
    cam = lab["cams"][0]

    async def scenario() -> None:
        driver = driver_for(cam)
        await driver.connect()
        try:
            described = await driver.describe()
            assert described["manufacturer"] and described["model"]
            assert abs(described["clock_drift_s"]) < 5
            sizes = {(p["width"], p["height"]) for p in described["profiles"]}
            assert len(described["profiles"]) == 2 and (320, 180) in sizes
            main = await driver.stream("main")
            assert main.url.startswith("rtsp://admin:s3cret@") and main.codec == "h264"
            sub = await driver.stream_uri("sub")
            assert sub.endswith("/video_sub")
            image = await driver.snapshot()
            assert image.startswith(b"\xff\xd8") and len(image) > 1000
            # the stream URIs are read at connection, without credentials
            uris = [p["stream_uri"] for p in described["profiles"]]
            assert all(u and u.startswith("rtsp://") and "@" not in u for u in uris), uris
            await driver.ptz_home()
            await driver.ptz_move(0.5, 0.0)
            await asyncio.sleep(0.2)
            await driver.ptz_stop()
            await driver.ptz_absolute(0.2, -0.1, 0.3)
            await driver.ptz_relative(0.3, 0.2, 0.0)
            state = await ipycam_ptz(cam)
            assert abs(state["pan"] - 0.5) < 0.01 and abs(state["tilt"] - 0.1) < 0.01, state
            await driver.ptz_home()
            await driver.ptz_goto_preset("home")  # ipycam's built-in preset
            # ipycam answers GetPresets and SetPreset with XML using an undeclared
            # prefix, and has no RemovePreset: those operations alone fail, naming
            # themselves, and the camera goes on
            with pytest.raises(OnvifOperationError, match="GetPresets"):
                await driver.ptz_presets()
            with pytest.raises(OnvifOperationError, match="SetPreset"):
                await driver.ptz_set_preset("Entrance")
            with pytest.raises(OnvifOperationError, match="RemovePreset"):
                await driver.ptz_remove_preset("home")
            with pytest.raises(ValueError, match="finite"):  # never a full-speed move
                await driver.ptz_move(math.nan, 0.0)
            # a camera whose profiles have no PTZ configuration cannot move: 409, not 502
            profiles = driver.profiles
            driver.profiles = [dataclasses.replace(p, ptz=False) for p in profiles]
            with pytest.raises(PtzUnsupported):
                await driver.ptz_stop()
            driver.profiles = profiles
            assert await driver.check_health() is True
        finally:
            await driver.close()
        wrong = driver_for(cam, password="nope")
        with pytest.raises(OnvifOperationError, match="unauthorized"):
            await wrong.connect()
        await wrong.close()

    with netns.entered(lab["net"].hub):
        asyncio.run(scenario())


def test_hub_discovers_adopts_and_follows_health(lab: dict[str, Any], tmp_path: Path) -> None:
    net, cams = lab["net"], lab["cams"]
    site = tmp_path / "site.yaml"
    (tmp_path / "secrets.yaml").write_text(f"cam_password: {PASSWORD}\n")
    site.write_text(
        "hub: {name: Lab, web: {host: 127.0.0.1, port: 0}}\n"
        f"discovery:\n  - source: onvif\n    timeout: 1.5s\n    interval: 1h\n"
        f"    options: {{interface: {net.hub_ip}}}\n"
    )

    async def scenario() -> None:
        hub = Hub.from_file(site, data_dir=tmp_path / "data")
        hub.setup()  # the managers exist once the configuration is valid
        hub.cameras.health_interval = 0.3
        pending: set[str] = set()

        def on_state(event: CameraStateChanged) -> None:
            if event.new_state == "pending_adoption":
                pending.add(event.camera_id)

        hub.bus.listen(CameraStateChanged, on_state)
        await hub.start()
        try:
            for _ in range(100):
                if len(pending) == 3:
                    break
                await asyncio.sleep(0.05)
            assert len(pending) == 3
            rows = {r.address: r for r in await hub.store.list_cameras()}
            secured = rows[cams[0].ip]
            assert secured.state == "pending_adoption" and secured.driver == "onvif"
            # adoption needs the authorisation, a location and a district
            with pytest.raises(AdoptionError, match="authorization"):
                await hub.cameras.adopt(
                    secured.id,
                    {"location": {"lat": 50.6, "lon": 3.0, "district": "Centre"}},
                    actor="t",
                )
            expired = {
                "authorization": {"reference": "OLD-1", "expires": "2020-01-01"},
                "location": {"lat": 50.6, "lon": 3.06, "district": "Centre"},
            }
            with pytest.raises(AdoptionError, match="expired on 2020-01-01"):
                await hub.cameras.adopt(secured.id, expired, actor="t")
            await hub.store.create_token("admin-1", "admin", hash_secret("csu_a"))
            await hub.store.create_token("op-1", "operator", hash_secret("csu_o"))
            body = {
                "authorization": {
                    "reference": "2026-VP-017",
                    "issued": "2026-02-01",
                    "expires": "2031-01-31",
                },
                "location": {
                    "lat": 50.6369,
                    "lon": 3.0633,
                    "district": "Centre",
                    "address": "Grand Place",
                },
                "name": "Grand Place",
                "options": {
                    "username": USER,
                    "password_secret": "cam_password",
                    "ptz_deadman": 0.6,
                },
                "reason": "installed by the city",
            }
            base = hub.web.url
            admin = {"Authorization": "Bearer csu_a"}
            operator = {"Authorization": "Bearer csu_o"}
            async with aiohttp.ClientSession() as session:
                url = f"{base}/api/cameras/{secured.id}/adopt"
                async with session.post(url, json=body, headers=operator) as resp:
                    assert resp.status == 403
                async with session.post(url, json=body, headers=admin) as resp:
                    assert resp.status == 201, await resp.text()
                    adopted = await resp.json()
                assert adopted["authorization"]["status"] == "valid"
                await wait_state(hub, secured.id, "online")
                async with session.get(f"{base}/api/cameras/{secured.id}", headers=operator) as r:
                    assert (await r.json())["recording_allowed"] is True
                async with session.get(
                    f"{base}/api/cameras/{secured.id}/snapshot.jpg", headers=operator
                ) as resp:
                    assert resp.status == 200
                    assert (await resp.read()).startswith(b"\xff\xd8")
                # the device information read at connection is in the register
                async with session.get(f"{base}/api/cameras/{secured.id}", headers=operator) as r:
                    device = (await r.json())["device"]
                assert device["manufacturer"] and device["model"] and device["serial"]
                assert len(device["profiles"]) == 2 and device["read_at"] > 0
                assert all(p["stream_uri"].startswith("rtsp://") for p in device["profiles"])
                ptz_url = f"{base}/api/cameras/{secured.id}/ptz"
                # hostile PTZ parameters: a 400 naming the field, the camera never asked
                for body, field in (
                    (b'{"action": "move", "pan": 0.3, "duration": NaN}', None),
                    (b'{"action": "move", "pan": NaN}', None),
                    ({"action": "move", "pan": 0.3, "duration": "0.3"}, "duration"),
                    ({"action": "move", "pan": 0.3, "duration": True}, "duration"),
                    ({"action": "move", "pan": 0.3, "duration": -1}, "duration"),
                    ({"action": "move", "pan": 0.3, "duration": 1e9}, "duration"),
                    ({"action": "move", "pan": 2}, "pan"),
                    ({"action": "move", "pan": 0.3, "durration": 2}, "durration"),
                    ({"action": "absolute", "zoom": -0.5}, "zoom"),
                    ({"action": "preset"}, "preset"),
                    ({"action": "spin"}, "action"),
                ):
                    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
                    sent = {**operator, "Content-Type": "application/json"}
                    async with session.post(ptz_url, headers=sent, **kwargs) as r:
                        answer = await r.json()
                        assert r.status == 400, (body, answer)
                        if field:
                            assert answer["field"] == field and field in answer["error"]
                        else:
                            assert "NaN" in answer["error"]
                assert (await ipycam_ptz(cams[0]))["moving"] is False
                # a move without a duration is answered at once and stopped by the
                # dead-man delay (0.6 s here): the camera's own position stops changing
                async with session.post(
                    ptz_url, headers=operator, json={"action": "move", "pan": 0.5}
                ) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["result"] == {"stops_in": 0.6, "deadman": True}
                trail = [r.action for r in await hub.store.audit_records(target=secured.id)]
                assert "camera.ptz" in trail  # audited when given, not when it ends
                await asyncio.sleep(0.3)
                assert (await ipycam_ptz(cams[0]))["moving"] is True
                await asyncio.sleep(0.8)
                stopped = await ipycam_ptz(cams[0])
                assert stopped["moving"] is False
                await asyncio.sleep(0.3)
                assert (await ipycam_ptz(cams[0]))["pan"] == stopped["pan"]
                async with session.post(
                    ptz_url, headers=operator, json={"action": "relative", "pan": -0.1}
                ) as r:
                    assert r.status == 200, await r.text()
                async with session.post(
                    ptz_url, headers=operator, json={"action": "preset", "preset": "home"}
                ) as r:
                    assert r.status == 200, await r.text()
                async with session.post(
                    ptz_url, headers=operator, json={"action": "set_preset", "name": "Door"}
                ) as r:
                    assert r.status == 502 and "SetPreset" in (await r.json())["error"]
                async with session.post(ptz_url, headers=operator, json={"action": "presets"}) as r:
                    assert r.status == 502 and "GetPresets" in (await r.json())["error"]
                # a camera without a PTZ profile: 409, like a driver without PTZ
                driver = hub.cameras.drivers[secured.id]
                profiles = driver.profiles  # type: ignore[attr-defined]
                driver.profiles = [dataclasses.replace(p, ptz=False) for p in profiles]  # type: ignore[attr-defined]
                async with session.post(ptz_url, headers=operator, json={"action": "home"}) as r:
                    assert r.status == 409, await r.text()
                driver.profiles = profiles  # type: ignore[attr-defined]
                async with session.get(f"{base}/api/discovery", headers=operator) as r:
                    assert r.status == 403  # discovery is the admin's (camera.adopt)
                async with session.get(f"{base}/api/discovery", headers=admin) as r:
                    listed = await r.json()
                assert len(listed["cameras"]) == 2 and listed["sources"] == ["onvif"]
            # a camera stopped mid-test goes offline, and comes back when restarted
            await asyncio.to_thread(cams[0].stop)
            await wait_state(hub, secured.id, "offline")
            assert hub.cameras.may_record(secured.id)[0] is False
            await asyncio.to_thread(cams[0].restart)
            await wait_state(hub, secured.id, "online", timeout=30)
            trail = [r.action for r in await hub.store.audit_records(target=secured.id)]
            assert {"camera.adopt", "camera.snapshot", "camera.ptz"} <= set(trail)
            adopted = await hub.store.audit_trail.entries(action="camera.adopt", target=secured.id)
            # the refused attempts above, then on record before the register changed,
            # then concluded: one story, written by the adoption, not twice by the API
            outcomes = [e["outcome"] for e in adopted]
            assert outcomes[-2:] == ["started", "ok"] and set(outcomes[:-2]) == {"refused"}
            assert adopted[-1]["ref"] == adopted[-2]["id"] and adopted[-2]["role"] == "admin"
            assert all(json.loads(e["details"])["why"] for e in adopted[:-2])
        finally:
            await hub.stop()

    with netns.entered(net.hub):
        asyncio.run(scenario())


async def wait_state(hub: Hub, camera_id: str, state: str, timeout: float = 15) -> None:
    if hub.cameras.states.get(camera_id) == state:
        return
    await hub.bus.wait_for(
        CameraStateChanged, match={"camera_id": camera_id, "new_state": state}, timeout=timeout
    )


def test_expired_authorisation_flags_the_camera(lab: dict[str, Any], tmp_path: Path) -> None:
    cam = lab["cams"][1]
    yesterday = dt.date.today() - dt.timedelta(days=1)
    site = tmp_path / "site.yaml"
    site.write_text(
        "hub: {web: {port: 0}}\ncameras:\n"
        f"  - id: cam-old\n    driver: onvif\n    options: {{host: {cam.ip}, port: "
        f"{cam.onvif_port}}}\n"
        f"    credentials: {{username: {cam.username}, password: {cam.password}}}\n"
        f"    authorization: {{reference: 2021-VP-1, issued: 2021-01-01, expires: {yesterday}}}\n"
    )
    seen: list[CameraAuthorizationChanged] = []

    async def scenario() -> None:
        hub = Hub.from_file(site, data_dir=tmp_path / "data", web=False)
        hub.bus.listen(CameraAuthorizationChanged, seen.append)
        await hub.start()
        try:
            await wait_state(hub, "cam-old", "online")
            allowed, why = hub.cameras.may_record("cam-old")
            assert allowed is False and f"expired on {yesterday}" in why
            row = await hub.store.get_camera("cam-old")
            assert row is not None and row.authorization_status == "expired"
        finally:
            await hub.stop()

    with netns.entered(lab["net"].hub):
        asyncio.run(scenario())
    assert [e.status for e in seen] == ["expired"]


def test_discovered_events_stream_before_the_wait_ends(lab: dict[str, Any]) -> None:
    async def scenario() -> list[float]:
        stats = wsdiscovery.ScanStats()
        async for _ in wsdiscovery.probe(1.0, interface=lab["net"].hub_ip, stats=stats):
            pass
        return sorted(stats.first_seen.values())

    with netns.entered(lab["net"].hub):
        times = asyncio.run(scenario())
    assert len(times) == 3 and times[-1] < 0.2


def test_hub_stop_is_prompt_and_stops_a_moving_camera(lab: dict[str, Any], tmp_path: Path) -> None:
    """A 60 s move pending at shutdown: the hub stops within seconds and so does the camera."""
    cam = lab["cams"][2]
    site = tmp_path / "site.yaml"
    site.write_text(
        "hub: {web: {host: 127.0.0.1, port: 0}}\ncameras:\n"
        f"  - id: cam-ptz\n    driver: onvif\n    options: {{host: {cam.ip}, port: "
        f"{cam.onvif_port}}}\n"
        f"    credentials: {{username: {cam.username}, password: {cam.password}}}\n"
        "    authorization: {reference: 2026-VP-9, issued: 2026-01-01, expires: 2031-01-01}\n"
    )

    async def scenario() -> float:
        hub = Hub.from_file(site, data_dir=tmp_path / "data")
        await hub.start()
        try:
            await wait_state(hub, "cam-ptz", "online")
            await hub.store.create_token("op", "operator", hash_secret("csu_o"))
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{hub.web.url}/api/cameras/cam-ptz/ptz",
                    headers={"Authorization": "Bearer csu_o"},
                    json={"action": "move", "tilt": 0.2, "duration": 60},
                ) as r:
                    assert r.status == 200 and (await r.json())["result"]["stops_in"] == 60
            await asyncio.sleep(0.2)
            assert (await ipycam_ptz(cam))["moving"] is True
        finally:
            started = time.monotonic()
            await hub.stop()
            took = time.monotonic() - started
        assert (await ipycam_ptz(cam))["moving"] is False
        return took

    with netns.entered(lab["net"].hub):
        took = asyncio.run(scenario())
    assert took < 5, f"hub stop took {took:.1f} s"


def test_cli_ptz_move_ends_and_refuses_nan(lab: dict[str, Any], tmp_path: Path) -> None:
    """`cameras ptz move` returns once the camera is stopped; `--duration nan` is refused."""
    cam = lab["cams"][1]
    site = tmp_path / "site.yaml"
    site.write_text(
        "hub: {web: {port: 0}}\ncameras:\n"
        f"  - id: cam-cli\n    driver: onvif\n    options: {{host: {cam.ip}, port: "
        f"{cam.onvif_port}}}\n"
        f"    credentials: {{username: {cam.username}, password: {cam.password}}}\n"
        "    authorization: {reference: 2026-VP-8, issued: 2026-01-01, expires: 2031-01-01}\n"
    )
    base = [*netns.exec_args(lab["net"].hub), sys.executable, "-m", "csuhub", "cameras", "ptz"]
    common = ["-c", str(site), "--data", str(tmp_path / "data")]
    (tmp_path / "data").mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, "cam-cli", *args, *common], capture_output=True, text=True, timeout=60
        )

    refused = run("move", "--pan", "0.3", "--duration", "nan")
    assert refused.returncode == 1 and "--duration" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    done = run("move", "--pan", "0.3", "--duration", "0.4")
    assert done.returncode == 0, done.stderr
    assert "stopped" in done.stdout

    async def state() -> dict[str, Any]:
        return await ipycam_ptz(cam)

    with netns.entered(lab["net"].hub):
        assert asyncio.run(state())["moving"] is False
    # audited before the move, with its parameters, then how it ended
    with sqlite3.connect(tmp_path / "data" / "csuhub.db") as db:
        rows = db.execute(
            "SELECT outcome, ref, details, id FROM audit_log WHERE action='camera.ptz' ORDER BY id"
        ).fetchall()
    (first, last) = rows
    assert first[0] == "started" and last[:2] == ("ok", first[3])
    params = json.loads(first[2])
    assert params["pan"] == 0.3 and params["duration"] == 0.4 and params["action"] == "move"
