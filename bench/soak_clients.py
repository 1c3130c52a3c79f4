"""B8 soak: the processes beside the hub (``bench/soak.py`` starts them).

* ``--bare SECONDS``: the baseline, the very lag probe the hub's loop runs,
  on a bare asyncio loop with nothing else to do, for the same seconds, under
  the same machine load (it runs at the same time as the hub).
* ``--clients SPEC``: everyone who talks to the hub during a shift, in one
  asyncio process so that none of it runs on the hub's loop:

  - kiosks: one browser-like viewer per wall screen, doing what
    ``csuhub/web/static/kiosk/kiosk.js`` does: ``GET /api/walls/{wall}``, one
    live WebSocket per tile that shows a camera (every frame read at once),
    ``/api/events`` for ``wall.changed`` and ``camera_state_changed``, and on
    each event the wall fetched again and the tiles reconciled (a spotlight
    taking the screen closes four sockets and opens four others);
  - API sessions polling the read endpoints operators' pages use;
  - the dispatch system: a signed webhook call now and then (an incident at
    the call's location, its nearest cameras held, the spotlight), each
    incident closed a while later through the API, as an operator would.

Each prints one JSON object on stdout when done.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import sys
import time
from typing import Any

#: the probe both loops run: sleep this long, note how late it woke
PROBE_S = 0.1


async def probe(seconds: float) -> list[float]:
    """Lag samples in ms: how late a ``PROBE_S`` sleep wakes up."""
    lags: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(PROBE_S)
        lags.append((time.perf_counter() - t0 - PROBE_S) * 1000)
    return lags


async def kiosk(spec: dict[str, Any], screen: int, token: str, out: dict[str, Any]) -> None:
    import aiohttp

    base, wall, end = spec["url"], spec["wall"], spec["end"]
    headers = {"Authorization": f"Bearer {token}"}
    players: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def play(http: aiohttp.ClientSession, camera: str, stream: str) -> None:
        url = f"{base}/api/live/{camera}?stream={stream}"
        while time.time() < end:
            try:
                async with http.ws_connect(url, max_msg_size=0, heartbeat=None) as ws:
                    out["opened"] += 1
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.BINARY:
                            out["bytes"] += len(msg.data)
            except (TimeoutError, aiohttp.ClientError):
                out["errors"] += 1
            if time.time() < end:
                out["reopened"] += 1
                await asyncio.sleep(1.0)

    async def refresh(http: aiohttp.ClientSession) -> None:
        async with http.get(f"{base}/api/walls/{wall}") as answer:
            if answer.status != 200:
                out["errors"] += 1
                return
            data = await answer.json()
        tiles = data["screens"][screen]["tiles"]
        wanted = {(t["camera"], t["stream"] or "main") for t in tiles if t.get("camera")}
        for key in set(players) - wanted:
            players.pop(key).cancel()
        for key in wanted - set(players):
            players[key] = asyncio.create_task(play(http, *key))
        out["refreshes"] += 1
        out["tiles_max"] = max(out["tiles_max"], len(players))

    async with aiohttp.ClientSession(headers=headers) as http:
        await refresh(http)
        events = f"{base}/api/events?events=wall.changed,camera_state_changed"
        try:
            async with asyncio.timeout(max(0.0, end - time.time())):
                while True:
                    try:
                        async with http.ws_connect(events) as ws:
                            async for msg in ws:
                                event = json.loads(msg.data)
                                if event.get("event") == "lag" and not event.get("dropped"):
                                    continue
                                await refresh(http)
                    except aiohttp.ClientError:
                        out["errors"] += 1
                    await asyncio.sleep(1.0)
        except TimeoutError:
            pass
        for task in players.values():
            task.cancel()
        await asyncio.gather(*players.values(), return_exceptions=True)


async def poller(spec: dict[str, Any], token: str, seed: int, out: dict[str, Any]) -> None:
    import aiohttp

    rng = random.Random(seed)
    cameras = spec["cameras"]
    paths = [
        lambda: "/api/cameras",
        lambda: "/api/incidents?limit=20",
        lambda: f"/api/walls/{spec['wall']}",
        lambda: f"/api/recordings/{rng.choice(cameras)}/gaps",
        lambda: "/api/retention/status",
        lambda: "/api/logbook",
    ]
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        await asyncio.sleep(rng.uniform(0, spec["poll_every"]))
        while time.time() < spec["end"]:
            path = rng.choice(paths)()
            t0 = time.perf_counter()
            try:
                async with http.get(spec["url"] + path) as answer:
                    await answer.read()
                    if answer.status != 200:
                        out["errors"].append(f"{answer.status} {path.split('?')[0]}")
            except aiohttp.ClientError as err:
                out["errors"].append(f"{type(err).__name__} {path}")
            out["latencies"].append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(spec["poll_every"])


async def dispatcher(spec: dict[str, Any], out: dict[str, Any]) -> None:
    """Signed calls (docs/webhook.md), each incident closed ``close_after`` later."""
    import aiohttp

    rng = random.Random(7)
    secret = spec["secret"].encode()
    closes: list[asyncio.Task[None]] = []

    async def close(http: aiohttp.ClientSession, incident: int) -> None:
        # an operator closes it a while later, or as the shift ends (the bench waits)
        await asyncio.sleep(max(0.0, min(spec["close_after"], spec["end"] - time.time() - 0.5)))
        url = f"{spec['url']}/api/incidents/{incident}/close"
        async with http.post(url, json={"outcome": "soak: dealt with"}) as answer:
            out["closed" if answer.status == 200 else "close_errors"] += 1

    headers = {"Authorization": f"Bearer {spec['admin']}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        n = 0
        while time.time() + 1 < spec["end"]:
            await asyncio.sleep(spec["call_every"])
            n += 1
            lat, lon = rng.choice(spec["places"])
            call = {
                "external_id": f"soak-{n}",
                "caller": "+33 6 00 00 00 00",
                "location": {"lat": lat + rng.uniform(-3e-4, 3e-4), "lon": lon, "radius_m": 30},
                "category": "rixe",
                "priority": rng.choice(["normal", "high"]),
                "text": "soak",
            }
            body = json.dumps(call, separators=(",", ":")).encode()
            ts = str(int(time.time()))
            sig = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            t0 = time.perf_counter()
            async with http.post(
                f"{spec['url']}/api/call-lines/{spec['line']}/calls",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Csuhub-Timestamp": ts,
                    "X-Csuhub-Signature": f"sha256={sig}",
                },
            ) as answer:
                data = await answer.json()
            out["call_ms"].append((time.perf_counter() - t0) * 1000)
            if answer.status == 201:
                out["calls"] += 1
                out["linked"] += len(data.get("cameras", []))
                closes.append(asyncio.create_task(close(http, data["incident"])))
            else:
                out["call_errors"] += 1
        await asyncio.gather(*closes, return_exceptions=True)


async def clients(spec: dict[str, Any]) -> dict[str, Any]:
    viewers = [
        {"bytes": 0, "opened": 0, "reopened": 0, "errors": 0, "refreshes": 0, "tiles_max": 0}
        for _ in spec["kiosks"]
    ]
    polls = {"latencies": [], "errors": []}
    calls = {"calls": 0, "linked": 0, "call_errors": 0, "closed": 0, "close_errors": 0}
    calls["call_ms"] = []  # type: ignore[assignment]
    await asyncio.gather(
        *(kiosk(spec, i, token, viewers[i]) for i, token in enumerate(spec["kiosks"])),
        *(poller(spec, token, i, polls) for i, token in enumerate(spec["pollers"])),
        dispatcher(spec, calls),
    )
    return {"kiosks": viewers, "polls": polls, "calls": calls}


def main() -> int:
    if sys.argv[1] == "--bare":
        print(json.dumps({"lags": asyncio.run(probe(float(sys.argv[2])))}))
    else:
        print(json.dumps(asyncio.run(clients(json.loads(sys.argv[2])))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
