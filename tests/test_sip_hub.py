"""The SIP call line end to end: real sipp (Debian sip-tester) against a real hub
on 127.0.0.1 with its desk, SQLite, audit and web API.

The scenarios are in tests/sipp/. Each call opens one incident at the caller's
point with its nearest cameras; CANCEL, answered-elsewhere, TCP and
retransmissions; and 200 calls at 20 calls/s with the event loop's lag and the
API's answers measured meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from still_camera import StillPlugin

from csuhub.api import IncidentOpened
from csuhub.testing import api_token, wait_camera_state

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIOS = Path(__file__).parent / "sipp"
#: Lille, Grand-Place
ORIGIN = (50.6367, 3.0633)
CAMERAS = {"cam-40": 40.0, "cam-90": 90.0, "cam-300": 300.0, "cam-far": 4000.0}

#: CI installs sip-tester, so there a missing sipp is a failure, not a skip
REQUIRED = bool(os.environ.get("CI"))

pytestmark = pytest.mark.skipif(
    not Path(SIPP).exists() and not REQUIRED, reason="sipp (sip-tester) not installed"
)


@pytest.fixture(autouse=True)
def _sipp_present() -> None:
    if not Path(SIPP).exists():
        pytest.fail(f"sipp not found at {SIPP}: CI must install sip-tester")


def north(metres: float) -> tuple[float, float]:
    return ORIGIN[0] + metres / 111_195.0, ORIGIN[1]


SITE = {
    "hub": {"timezone": "UTC"},
    "cameras": [
        {"id": cid, "driver": "still", "location": dict(zip(("lat", "lon"), north(m), strict=True))}
        for cid, m in CAMERAS.items()
    ],
    "incidents": {"radius": 1000, "max_cameras": 3},
    "call_lines": [
        {"id": "sip", "type": "sip", "options": {"listen_port": 0, "ring_for": 0}},
        {"id": "sip-watch", "type": "sip", "options": {"listen_port": 0, "answer": "observe"}},
    ],
}


@pytest.fixture
async def hub(hub_factory: Any) -> AsyncIterator[Any]:
    async with hub_factory(SITE, web=True, plugins=[("still", StillPlugin())]) as hub:
        for camera_id in CAMERAS:
            await wait_camera_state(hub, camera_id, "online")
        yield hub


async def sipp(
    hub: Any,
    scenario: str,
    tmp_path: Path,
    *args: str,
    line: str = "sip",
    calls: int = 1,
    rate: float = 10,
    timeout: float = 30,
) -> None:
    port = hub.call_lines[line].port
    argv = [
        SIPP,
        "-sf",
        str(SCENARIOS / scenario),
        f"127.0.0.1:{port}",
        "-i",
        "127.0.0.1",
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_err",
        *args,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
    if proc.returncode != 0:
        logs = "".join(p.read_text()[-2000:] for p in tmp_path.glob("*_errors.log"))
        raise AssertionError(f"sipp exited {proc.returncode}: {err.decode()[-1000:]}\n{logs}")


def at(lat: float, lon: float) -> tuple[str, ...]:
    return ("-key", "lat", repr(lat), "-key", "lon", repr(lon))


async def incidents(hub: Any, count: int, timeout: float = 10.0) -> list[Any]:
    """The incidents, once ``count`` exist and their reports are settled."""
    deadline = time.monotonic() + timeout
    while True:
        found = await hub.incidents.list()
        if len(found) >= count or time.monotonic() > deadline:
            return list(found)
        await asyncio.sleep(0.05)


async def test_pidf_point_by_value_opens_an_incident_with_the_nearest_cameras(
    hub: Any, tmp_path: Path
) -> None:
    opened: list[IncidentOpened] = []
    hub.bus.listen(IncidentOpened, opened.append)
    await sipp(hub, "pidf_point.xml", tmp_path, *at(*ORIGIN))
    [incident] = await incidents(hub, 1)
    assert incident.source_line == "sip" and incident.caller == "+33612341"
    assert incident.location.lat == ORIGIN[0] and incident.location.lon == ORIGIN[1]
    assert incident.camera_ids == ("cam-40", "cam-90", "cam-300")
    distances = [c.distance_m for c in incident.cameras]
    assert distances == sorted(distances) and 35 < distances[0] < 45
    assert incident.call_state == "ringing"
    for _ in range(100):  # the event follows the commit that the store just showed
        if opened:
            break
        await asyncio.sleep(0.02)
    assert [e.incident.camera_ids for e in opened] == [("cam-40", "cam-90", "cam-300")]
    # what the operators see
    token = await api_token(hub, "operator", name="olga")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{hub.web.url}/api/incidents", headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        listed = await resp.json()
    [shown] = listed["incidents"]
    assert [c["id"] for c in shown["cameras"]] == ["cam-40", "cam-90", "cam-300"]
    assert shown["source"] == {"kind": "call_line", "line": "sip", "call_id": incident.call_id}
    assert shown["caller"] != "+33612341"


async def test_pidf_circle_by_cid_reference_and_a_call_over_tcp(hub: Any, tmp_path: Path) -> None:
    lat, lon = north(290)
    await sipp(hub, "pidf_cid.xml", tmp_path, *at(lat, lon), "-key", "radius", "35")
    await sipp(hub, "pidf_point.xml", tmp_path, *at(*north(85)), "-t", "t1")
    by_caller = {i.caller: i for i in await incidents(hub, 2)}
    circle = by_caller["+33698765432"]
    assert (circle.location.lat, circle.location.lon, circle.location.radius_m) == (lat, lon, 35)
    assert circle.camera_ids[0] == "cam-300"  # not the decoy part's Paris point
    tcp = by_caller["+33612341"]
    assert tcp.camera_ids[0] == "cam-90"


async def test_cancel_before_answer_and_answered_elsewhere(hub: Any, tmp_path: Path) -> None:
    await sipp(hub, "cancel.xml", tmp_path, "-key", "reason", "X-Note: abandoned", line="sip-watch")
    await sipp(
        hub,
        "cancel.xml",
        tmp_path,
        "-key",
        "reason",
        'Reason: SIP;cause=200;text="Call completed elsewhere"',
        line="sip-watch",
    )
    await hub.call_lines["sip-watch"].stop()  # waits for the reports in flight
    found = sorted(await incidents(hub, 2), key=lambda i: i.id)
    assert [i.call_state for i in found] == ["abandoned", "answered"]
    assert all(i.source_line == "sip-watch" and i.location is None for i in found)


async def test_retransmitted_invites_open_exactly_one_incident_each(
    hub: Any, tmp_path: Path
) -> None:
    await sipp(
        hub,
        "retransmit.xml",
        tmp_path,
        "-max_invite_retrans",
        "40",
        # the CANCEL too may take longer on a loaded CI machine than sipp's default
        # 5 retransmissions (a CI run aborted a call on it): the point here is the INVITE's
        "-max_non_invite_retrans",
        "40",
        "-key",
        "reason",
        "X-Note: x",
        line="sip-watch",
        calls=20,
        rate=20,
    )
    line = hub.call_lines["sip-watch"]
    assert line.agent.retransmissions > 0  # sipp did retransmit
    found = await incidents(hub, 20)
    await asyncio.sleep(0.2)
    found = await hub.incidents.list()
    assert len(found) == 20 and len({i.call_id for i in found}) == 20


async def test_200_calls_at_20_per_second(hub: Any, tmp_path: Path) -> None:
    lags: list[float] = []
    api: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - start - 0.005)

    token = await api_token(hub, "operator", name="olga")

    async def reader() -> None:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            while not stop.is_set():
                start = time.perf_counter()
                async with http.get(f"{hub.web.url}/api/incidents?status=open&limit=20") as resp:
                    assert resp.status == 200
                    await resp.read()
                api.append(time.perf_counter() - start)
                await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(probe()), asyncio.create_task(reader())]
    try:
        await sipp(hub, "pidf_point.xml", tmp_path, *at(*ORIGIN), calls=200, rate=20, timeout=40)
        found = await incidents(hub, 200)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert len(found) == 200 and len({i.call_id for i in found}) == 200
    assert all(i.camera_ids[:1] == ("cam-40",) for i in found)
    lag_p99 = statistics.quantiles(lags, n=100)[98]
    print(f"loop lag p99 {lag_p99 * 1000:.1f} ms, API max {max(api) * 1000:.0f} ms over {len(api)}")
    assert lag_p99 < 0.020
    assert len(api) >= 20 and max(api) < 1.0
