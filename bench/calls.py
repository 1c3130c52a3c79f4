#!/usr/bin/env python3
"""B11: a call's INVITE to ``incident.opened`` with its nearest cameras, at 20 calls/s.

A hub (real store, desk, audit, bus) with 100 cameras over Lille and a SIP
line on 127.0.0.1 runs in this process. A sender in a child process (plain
asyncio UDP, as a PBX's monitoring fork would send) sends INVITEs carrying a
PIDF-LO point at 20 calls/s, ACKs the 486, and notes when each INVITE left
(on loopback that is when it reached the line's socket, within microseconds).
The hub notes when each ``incident.opened`` event is dispatched, and checks it
carries the nearest cameras. Latency = opened - sent, per call.

Baseline, same run, same sender, same rate: a bare asyncio UDP echo in the
hub's process (its round trip: the floor of loopback plus two event loops).
Also timed: the sender's INVITE -> 100 Trying round trip (parse, transaction),
and ``CameraIndex.nearest`` over 10,000 cameras (B10's index, which the desk
uses) for 1,000 random points.

Target: opened p99 < 20 ms at 20 calls/s.

    python bench/calls.py            # 1,200 calls (60 s)
    python bench/calls.py --quick    # 200 calls (10 s), under a minute in all

The last line is the JSON object the other bench/ scripts print.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

RATE = 20.0
CAMERAS = 100
TARGET_MS = 20.0
#: Lille, Grand-Place
ORIGIN = (50.6367, 3.0633)


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def invite(i: int, port: int, lat: float, lon: float) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" '
        'entity="pres:c@pbx"><tuple id="t"><status><gp:geopriv><gp:location-info>'
        f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{lat:.6f} {lon:.6f}</gml:pos>'
        "</gml:Point></gp:location-info></gp:geopriv></status></tuple></presence>"
    ).encode()
    head = (
        "INVITE sip:police@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-bench-{i};rport\r\n"
        f"From: <sip:0320000000@pbx>;tag=b{i}\r\nTo: <sip:police@127.0.0.1>\r\n"
        f"Call-ID: bench-{i}@pbx\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"P-Asserted-Identity: <tel:+336{i:08d}>\r\n"
        f"Geolocation: <cid:loc{i}@pbx>\r\nContent-ID: <loc{i}@pbx>\r\n"
        f"Content-Type: application/pidf+xml\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# -- the sender (child process) ------------------------------------------------------


async def send(sip_port: int, echo_port: int, calls: int, rate: float, seed: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    sent: dict[str, float] = {}
    trying: list[float] = []
    echo_rtt: list[float] = []
    echo_sent: dict[bytes, float] = {}

    class Sip(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            now = time.time()
            text = data.decode("utf-8", "replace")
            call = text.split("Call-ID: ", 1)[1].split("\r\n", 1)[0]
            if text.startswith("SIP/2.0 100 "):
                trying.append(now - sent[call])
            elif text.startswith("SIP/2.0 486 "):
                i = call.split("-", 1)[1].split("@", 1)[0]
                to = text.split("\r\nTo: ", 1)[1].split("\r\n", 1)[0]
                ack = (
                    "ACK sip:police@127.0.0.1 SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-bench-{i};rport\r\n"
                    f"From: <sip:0320000000@pbx>;tag=b{i}\r\nTo: {to}\r\n"
                    f"Call-ID: {call}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n"
                )
                sip.sendto(ack.encode())

    class Echo(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            echo_rtt.append(time.time() - echo_sent[data])

    sip, _ = await loop.create_datagram_endpoint(Sip, remote_addr=("127.0.0.1", sip_port))
    port = sip.get_extra_info("sockname")[1]
    echo, _ = await loop.create_datagram_endpoint(Echo, remote_addr=("127.0.0.1", echo_port))
    start = loop.time()
    for i in range(calls):
        # the baseline's datagram and the call alternate at the same rate
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        payload = f"echo-{i}".encode().ljust(900, b".")
        echo_sent[payload] = time.time()
        echo.sendto(payload)
        await asyncio.sleep(max(0.0, start + (i + 0.5) / rate - loop.time()))
        lat = ORIGIN[0] + rng.uniform(-0.01, 0.01)
        lon = ORIGIN[1] + rng.uniform(-0.015, 0.015)
        data = invite(i, port, lat, lon)
        sent[f"bench-{i}@pbx"] = time.time()
        sip.sendto(data)
    await asyncio.sleep(1.0)
    sip.close()
    echo.close()
    return {"sent": sent, "trying": trying, "echo": echo_rtt}


# -- the hub (this process) ----------------------------------------------------------


class StillDriver:
    def __init__(self, hub: Any, camera_id: str, options: dict[str, Any]) -> None:
        pass

    async def connect(self) -> None:
        pass

    async def describe(self) -> dict[str, Any]:
        return {}

    async def stream(self, profile: str = "main") -> Any:
        raise NotImplementedError

    async def check_health(self) -> bool:
        return True

    async def close(self) -> None:
        pass


def still_plugin() -> Any:
    from csuhub.api import CameraDriverSpec, hookimpl

    class StillPlugin:
        @hookimpl
        def register_camera_drivers(self, hub: Any) -> list[Any]:
            return [CameraDriverSpec(name="still", factory=StillDriver)]

    return StillPlugin()


class EchoProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def run_hub(calls: int, seed: int) -> dict[str, Any]:
    from csuhub.api import IncidentOpened
    from csuhub.testing import make_hub, wait_camera_state

    rng = random.Random(seed)
    cameras = [
        {
            "id": f"cam-{n:03d}",
            "driver": "still",
            "location": {
                "lat": ORIGIN[0] + rng.uniform(-0.012, 0.012),
                "lon": ORIGIN[1] + rng.uniform(-0.018, 0.018),
            },
        }
        for n in range(CAMERAS)
    ]
    config = {
        "hub": {"timezone": "UTC"},
        "cameras": cameras,
        "incidents": {"radius": 500, "max_cameras": 4},
        "call_lines": [{"id": "sip", "type": "sip", "options": {"listen_port": 0, "ring_for": 0}}],
    }
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="csuhub-bench-calls-") as tmp:
        async with make_hub(
            Path(tmp), config, plugins=[("still", still_plugin())], sweeping=False
        ) as hub:
            for cam in cameras:
                await wait_camera_state(hub, cam["id"], "online")
            opened: dict[int, tuple[float, int]] = {}
            hub.bus.listen(
                IncidentOpened,
                lambda e: opened.setdefault(e.incident.id, (time.time(), len(e.incident.cameras))),
            )
            echo, _ = await loop.create_datagram_endpoint(EchoProtocol, local_addr=("127.0.0.1", 0))
            echo_port = echo.get_extra_info("sockname")[1]
            sip_port = hub.call_lines["sip"].port
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--sender",
                str(sip_port),
                str(echo_port),
                str(calls),
                str(seed),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            sender = json.loads(out.decode().strip().splitlines()[-1])
            for _ in range(100):
                if len(opened) >= calls:
                    break
                await asyncio.sleep(0.05)
            latencies: list[float] = []
            linked: list[int] = []
            for incident_id, (at, count) in opened.items():
                incident = await hub.incidents.get(incident_id)
                sent = sender["sent"].get(incident.call_id)
                if sent is not None:
                    latencies.append(at - sent)
                    linked.append(count)
            echo.close()
    return {"latencies": latencies, "linked": linked, **sender}


def time_nearest(seed: int, queries: int = 1000) -> dict[str, float]:
    from csuhub.incidents.nearest import CameraIndex, CameraPoint

    rng = random.Random(seed)
    points = [
        CameraPoint(
            id=f"c{n:05d}",
            lat=ORIGIN[0] + rng.uniform(-0.2, 0.2),
            lon=ORIGIN[1] + rng.uniform(-0.3, 0.3),
            bearing=rng.uniform(0, 360) if n % 3 == 0 else None,
            fov=60.0 if n % 3 == 0 else None,
        )
        for n in range(10_000)
    ]
    started = time.perf_counter()
    index = CameraIndex(points)
    build = time.perf_counter() - started
    took: list[float] = []
    for _ in range(queries):
        lat = ORIGIN[0] + rng.uniform(-0.2, 0.2)
        lon = ORIGIN[1] + rng.uniform(-0.3, 0.3)
        t = time.perf_counter()
        index.nearest(lat, lon, radius_m=500, limit=4)
        took.append(time.perf_counter() - t)
    ms = [x * 1000 for x in took]
    return {"build_ms": build * 1000, "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 calls (10 s)")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--sender", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        sip_port, echo_port, calls, seed = (int(v) for v in args.sender)
        print(json.dumps(asyncio.run(send(sip_port, echo_port, calls, RATE, seed))))
        return 0
    calls = args.calls or (200 if args.quick else 1200)
    print(
        f"B11 calls: {calls} INVITEs at {RATE:g}/s, {CAMERAS} cameras, {platform.python_version()}"
    )
    result = asyncio.run(run_hub(calls, args.seed))
    opened = [x * 1000 for x in result["latencies"]]
    echo = [x * 1000 for x in result["echo"]]
    trying = [x * 1000 for x in result["trying"]]
    nearest = time_nearest(args.seed)
    with_cameras = sum(1 for n in result["linked"] if n > 0)
    print(f"opened:  {len(opened)}/{calls} incidents, {with_cameras} with cameras linked")
    print(
        f"INVITE -> incident.opened  p50 {pct(opened, 50):6.2f} ms  p99 {pct(opened, 99):6.2f} ms"
    )
    print(
        f"INVITE -> 100 Trying (rtt) p50 {pct(trying, 50):6.2f} ms  p99 {pct(trying, 99):6.2f} ms"
    )
    print(f"bare UDP echo (rtt)        p50 {pct(echo, 50):6.2f} ms  p99 {pct(echo, 99):6.2f} ms")
    print(
        f"nearest at 10,000 cameras  p50 {nearest['p50_ms']:.3f} ms  p99 {nearest['p99_ms']:.3f} ms"
        f"  (index built in {nearest['build_ms']:.0f} ms)"
    )
    ok = len(opened) == calls and with_cameras == calls and pct(opened, 99) < TARGET_MS
    print(
        json.dumps(
            {
                "bench": "calls",
                # the house keys: INVITE -> incident.opened p99 against the bare echo's
                "value": round(pct(opened, 99), 3),
                "baseline": round(pct(echo, 99), 3),
                "ratio": round(pct(opened, 99) / max(pct(echo, 99), 1e-6), 2),
                "target": TARGET_MS,
                "calls": calls,
                "rate": RATE,
                "cameras": CAMERAS,
                "opened": len(opened),
                "opened_p50_ms": round(pct(opened, 50), 3),
                "opened_p99_ms": round(pct(opened, 99), 3),
                "opened_max_ms": round(max(opened), 3) if opened else None,
                "trying_p99_ms": round(pct(trying, 99), 3),
                "echo_p50_ms": round(pct(echo, 50), 3),
                "echo_p99_ms": round(pct(echo, 99), 3),
                "nearest_10k_p50_ms": round(nearest["p50_ms"], 4),
                "nearest_10k_p99_ms": round(nearest["p99_ms"], 4),
                "target_p99_ms": TARGET_MS,
                "ok": ok,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
