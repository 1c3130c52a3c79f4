#!/usr/bin/env python3
"""B7: WS-Discovery scan time, 100 simulated cameras, with and without packet loss.

Inside a network namespace this script creates (multicast never touches the
host's interfaces), 100 responders join 239.255.255.250:3702 and answer each
Probe after a random 0-500 ms delay, dropping probes and replies at the given
loss rate. Measured: the time until csuhub's probe has yielded all 100.

Baseline, same run: a bare asyncio datagram loop that sends one Probe and
counts raw replies (no parsing, no retransmission). Without loss it finishes
when the slowest camera answers; with loss it never finds them all, which is
why csuhub retransmits.

Targets: all 100 within 0.8 s without loss and within 1.5 s with 10 % loss
(Home Assistant waits a fixed 3 s, go2rtc up to 5 s). The last line printed
is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "tests")]

CAMERAS = 100
TARGETS = {0.0: 0.8, 0.1: 1.5}


async def start_responders(count: int, loss: float, seed: int) -> list[object]:
    from peers.wsd_responder import Camera, start_multicast

    rng = random.Random(seed)
    transports = []
    for i in range(count):
        camera = Camera(
            f"urn:uuid:00000000-0000-0000-0000-{i:012d}",
            f"http://127.0.0.{10 + i % 200}:{8000 + i}/onvif/device_service",
            name=f"cam{i}",
        )
        transport, _ = await start_multicast(
            camera, "127.0.0.1", delay=(0.0, 0.5), loss=loss, rng=random.Random(rng.random())
        )
        transports.append(transport)
    return transports


async def csuhub_scan(count: int, limit: float) -> float | None:
    """Seconds until csuhub's probe yielded every camera, or None if it never did."""
    from csuhub_onvif import wsdiscovery

    start = time.monotonic()
    found: set[str] = set()
    async for match in wsdiscovery.probe(limit, interface="127.0.0.1"):
        found.add(match.ref)
        if len(found) == count:
            return time.monotonic() - start
    return None


async def bare_scan(count: int, limit: float) -> tuple[float | None, int]:
    """One probe, raw replies counted by sender port; no parsing, no retransmission."""
    from csuhub_onvif import wsdiscovery

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    seen: set[bytes] = set()
    start = time.monotonic()
    finished: list[float] = []

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            marker = data.find(b"urn:uuid:00000000")
            seen.add(data[marker : marker + 45])
            if len(seen) == count and not finished:
                finished.append(time.monotonic() - start)
                done.set()

    sock = wsdiscovery._make_socket("127.0.0.1", 1)
    transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
    transport.sendto(wsdiscovery.build_probe(), (wsdiscovery.MULTICAST_GROUP, wsdiscovery.PORT))
    try:
        await asyncio.wait_for(done.wait(), limit)
    except TimeoutError:
        pass
    transport.close()
    return (finished[0] if finished else None), len(seen)


async def inner(runs: int, limit: float) -> dict[str, object]:
    results: dict[str, object] = {}
    for loss in TARGETS:
        ours: list[float | None] = []
        bare: list[tuple[float | None, int]] = []
        for run in range(runs):
            responders = await start_responders(CAMERAS, loss, seed=run)
            try:
                ours.append(await csuhub_scan(CAMERAS, limit))
                await asyncio.sleep(0.6)  # let late replies to this scan drain
                bare.append(await bare_scan(CAMERAS, limit))
            finally:
                for transport in responders:
                    transport.close()  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        results[str(loss)] = {"csuhub": ours, "bare": bare}
    return results


def outer(args: argparse.Namespace) -> int:
    from peers import netns

    if not netns.available():
        print("needs root and iproute2 (ip netns) to keep multicast inside a namespace")
        print(
            json.dumps(
                {
                    "bench": "discovery",
                    "value": None,
                    "baseline": None,
                    "ratio": None,
                    "target": TARGETS[0.0],
                    "ok": False,
                }
            )
        )
        return 1
    runs = 3 if args.quick else 10
    with netns.LoopbackNetns() as net:
        proc = subprocess.run(
            [
                *netns.exec_args(net.name),
                sys.executable,
                __file__,
                "--inner",
                "--runs",
                str(runs),
                "--limit",
                "3",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return 1
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpu, python "
        f"{platform.python_version()}; {CAMERAS} responders, delay 0-500 ms, {runs} runs"
    )
    ok = True
    summary = {}
    for loss, target in TARGETS.items():
        entry = data[str(loss)]
        ours = entry["csuhub"]
        bare = entry["bare"]
        complete = [t for t in ours if t is not None]
        worst = max(complete) if len(complete) == len(ours) else None
        bare_times = [t for t, _ in bare if t is not None]
        bare_found = [n for _, n in bare]
        print(
            f"loss {loss:.0%}: csuhub all {CAMERAS} found in "
            f"{', '.join(f'{t:.3f}' if t else 'never' for t in ours)} s "
            f"(worst {worst if worst is None else round(worst, 3)}; target {target} s)"
        )
        print(
            f"          bare single probe: found {bare_found} "
            f"(complete in {', '.join(f'{t:.3f}' for t in bare_times) or 'no run'} s)"
        )
        ok = ok and worst is not None and worst <= target
        summary[loss] = (worst, statistics.median(bare_times) if bare_times else None)
    worst0, bare0 = summary[0.0]
    ratio = round(worst0 / bare0, 3) if worst0 and bare0 else None
    print(f"ratio (csuhub worst / bare median, no loss): {ratio}")
    print(
        json.dumps(
            {
                "bench": "discovery",
                "value": worst0 and round(worst0, 3),
                "baseline": bare0 and round(bare0, 3),
                "ratio": ratio,
                "target": TARGETS[0.0],
                "ok": bool(ok),
            }
        )
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per loss rate (< 60 s)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=3.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(inner(args.runs, args.limit))))
        return 0
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
