"""Benchmark: authenticated API reads against a bare aiohttp "hello" in the same run.

Issue 12's target: camera and timeline reads, authenticated as every request
is (bearer token looked up in SQLite, permission and camera scope checked,
the audit middleware in the chain), serve at least half the requests per
second of a bare aiohttp server answering ``{"hello": "world"}``, measured
with the same client at the same concurrency in the same run.

The hub runs in one child process and the bare server in another, each on
127.0.0.1; the client (aiohttp, N workers looping) runs in this process. The
hub has 100 cameras in its register, a day of one camera's footage indexed
(1,440 one-minute segments, :func:`csuhub.testing.index_footage`), and an
audit trail of 1M chained entries (real hashes, written as ``bench/audit.py``
writes them: the chain's own encoding, one transaction, ``executemany``).

Figures:

- ``cameras``: ``GET /api/cameras`` (100 cameras, about 60 KB of JSON);
- ``timeline``: ``GET /api/recordings/cam-000`` over one hour of that day (the
  panel's default window: 60 segments, their gaps and continuity);
- ``timeline_day``: the same over the whole day (1,440 segments), for
  information;
- ``audit_*``: ``GET /api/audit`` over the 1M entries (newest 100, one
  action over a day, one camera), for information.

- ``timeline_uncached``: the hour's timeline with a different range at every
  request (one second later each time), so no kept answer serves it: the
  cost of reading the index and building the continuity report, which every
  first request and every request after a commit pays.

The hub keeps answers while the database is unchanged (``csuhub.web.cache``):
the reads above are served from memory after their first request, as they
are for a wall of clients polling; nothing is committed during a window.

The bare server is measured before and after the hub's reads; the baseline is
their mean (the machine is shared: both windows are printed). The bare server
also serves each read's answer, fetched once from the hub, re-encoded by a
plain handler (``same_*``), and as the hub's bytes without encoding
(``bytes_*``): what the hub's stack (authentication, the checks) costs over a
server that only has to send the same bytes.

The client is aiohttp in this process by default. It tops out near 9k
requests/s on a 2-core machine and shares the cores with the servers, so it
flatters the hub (its own cost is a larger part of every request);
``--client wrk`` uses ``wrk`` (``apt install wrk``, one thread, the same
connections, keep-alive) when it is installed, which measures the servers.

    python bench/api.py                # 1M audit entries, 8 s windows
    python bench/api.py --quick        # 200k entries, 3 s windows, under a minute
    python bench/api.py --client wrk   # the same with wrk as the client

The last line is the JSON object the other bench/ scripts print.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from aiohttp import web

TARGET = 0.5
CONCURRENCY = 16
CAMERAS = 100
DAY = 86400.0


# -- the servers (child processes) -----------------------------------------------


def bare_server(payloads: dict[str, Any], queue: Any, stop: Any) -> None:
    """``/hello``, and ``/same/<name>``: the hub's own answer to read ``name``,
    encoded by a plain handler each time (no authentication, no store);
    ``/bytes/<name>``: the same answer encoded once."""

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    async def same(request: web.Request) -> web.Response:
        return web.json_response(payloads[request.match_info["name"]])

    encoded = {name: json.dumps(payload).encode() for name, payload in payloads.items()}

    async def as_bytes(request: web.Request) -> web.Response:
        body = encoded[request.match_info["name"]]
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/hello", hello)
        app.router.add_get("/same/{name}", same)
        app.router.add_get("/bytes/{name}", as_bytes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        queue.put({"url": f"http://127.0.0.1:{port}"})
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await runner.cleanup()

    asyncio.run(main())


def hub_server(data_dir: str, queue: Any, stop: Any) -> None:
    import logging

    logging.disable(logging.WARNING)  # the bench's output, not the hub's

    from csuhub.testing import api_token, index_footage, make_hub

    async def main() -> None:
        config = {"hub": {"name": "bench-api"}}
        async with make_hub(Path(data_dir), config, web=True, sweeping=False) as hub:
            for i in range(CAMERAS):
                await hub.store.upsert_camera(
                    f"cam-{i:03d}",
                    name=f"Camera {i}",
                    driver="onvif",
                    state="discovered",
                    origin="discovered",
                    address=f"10.0.{i // 250}.{i % 250}",
                    location={"district": f"d{i % 7}", "lat": 43.6, "lon": 3.9},
                    info={"model": "bench", "firmware": "1.0"},
                )
            day = (time.time() // DAY - 2) * DAY  # two days ago, UTC midnight
            await index_footage(hub, "cam-000", day, 24, segment=60.0, size=256)
            token = await api_token(hub, "admin", name="bench")
            assert hub.web is not None
            queue.put({"url": hub.web.url, "token": token, "day": day})
            while not stop.is_set():
                await asyncio.sleep(0.1)

    asyncio.run(main())


# -- the client --------------------------------------------------------------------


#: ``(prefix, first)``: request ``n`` asks ``prefix?from=first+n&to=first+n+3600``
Moving = tuple[str, float]


def _moving_url(moving: Moving, n: int) -> str:
    prefix, first = moving
    return f"{prefix}?from={first + n}&to={first + n + 3600}"


async def load(
    url: str | Moving, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Requests per second (and latency percentiles) of ``concurrency`` workers
    sending GET ``url`` back to back for ``seconds``; any non-200 is an error.
    A :data:`Moving` url asks a different range at every request."""
    latencies: list[float] = []
    errors = 0
    sent = 0

    def next_url() -> str:
        nonlocal sent
        sent += 1
        return url if isinstance(url, str) else _moving_url(url, sent)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        # warm-up: connections open, caches filled
        for _ in range(concurrency):
            async with http.get(next_url()) as resp:
                await resp.read()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while (t := time.perf_counter()) < deadline:
                async with http.get(next_url()) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)
    return {
        "rps": round(count / elapsed, 1),
        "requests": count,
        "errors": errors,
        "p50_ms": round(1000 * latencies[count // 2], 2) if count else None,
        "p99_ms": round(1000 * latencies[min(count - 1, int(count * 0.99))], 2) if count else None,
    }


_WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local first = {first} + counter
  return wrk.format("GET", "{path}?from=" .. first .. "&to=" .. (first + 3600))
end
"""


def load_wrk(
    url: str | Moving, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, Any]:
    """The same figures measured by ``wrk`` (one thread, ``concurrency``
    keep-alive connections): a client fast enough not to be the bottleneck."""
    first = url if isinstance(url, str) else _moving_url(url, 0)
    asyncio.run(_fetch(first, headers, raw=True))  # the first request's reading and keeping
    args = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory() as tmp:
        if not isinstance(url, str):
            prefix, start = url
            path = "/" + prefix.split("/", 3)[3]
            script = Path(tmp) / "moving.lua"
            script.write_text(_WRK_SCRIPT.replace("{first}", repr(start)).replace("{path}", path))
            args += ["-s", str(script)]
        out = subprocess.run([*args, first], capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        figures[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": round(rps, 1),
        "requests": requests,
        "errors": int(bad.group(1)) if bad else 0,
        "socket_errors": sockets.group(1).strip() if sockets else None,
        "p50_ms": round(figures.get("50", 0.0), 2),
        "p99_ms": round(figures.get("99", 0.0), 2),
    }


async def _fetch(url: str, headers: dict[str, str], raw: bool = False) -> Any:
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as resp:
        resp.raise_for_status()
        return await resp.read() if raw else await resp.json()


def _start(target: Any, *args: Any) -> tuple[Any, Any, dict[str, Any]]:
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, queue, stop), daemon=True)
    proc.start()
    info = queue.get(timeout=600)
    return proc, stop, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200k audit entries, 3 s windows")
    parser.add_argument("--seconds", type=float, help="length of each measuring window")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument(
        "--client",
        choices=("aiohttp", "wrk"),
        default="aiohttp",
        help="the load generator (wrk: installed apart, measures the servers, not the client)",
    )
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("--client wrk needs wrk on PATH (apt install wrk)")
    entries = 200_000 if args.quick else 1_000_000
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    work = Path(tempfile.mkdtemp(prefix="csuhub-bench-api-"))
    procs: list[tuple[Any, Any]] = []
    try:
        from audit import build  # bench/audit.py: chained entries, the chain's own hashes

        from csuhub.hub import DATABASE

        t = time.perf_counter()
        data = work / "data"
        data.mkdir()
        build(data / DATABASE, entries)
        print(f"built {entries} chained audit entries in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        hub_proc, hub_stop, hub = _start(hub_server, str(data))
        procs.append((hub_proc, hub_stop))
        print(f"hub ready (100 cameras, a day of footage) in {time.perf_counter() - t:.1f} s")
        auth = {"Authorization": f"Bearer {hub['token']}"}
        day = hub["day"]
        base = hub["url"]
        reads: dict[str, str | Moving] = {
            "cameras": f"{base}/api/cameras",
            "timeline": f"{base}/api/recordings/cam-000?from={day + 43200}&to={day + 46800}",
            "timeline_day": f"{base}/api/recordings/cam-000?from={day}&to={day + DAY}",
            "timeline_uncached": (f"{base}/api/recordings/cam-000", day + 43200),
            "audit_newest": f"{base}/api/audit?limit=100",
            "audit_action_day": f"{base}/api/audit?action=camera.ptz"
            f"&from=1764000000&to={1764000000 + DAY}&limit=100",
            "audit_target": f"{base}/api/audit?target=cam-007&limit=100",
        }

        def run(url: str | Moving, headers: dict[str, str]) -> dict[str, Any]:
            if args.client == "wrk":
                return load_wrk(url, headers, seconds, args.concurrency)
            return asyncio.run(load(url, headers, seconds, args.concurrency))

        same = ("cameras", "timeline")
        payloads = {name: asyncio.run(_fetch(str(reads[name]), auth)) for name in same}
        bare_proc, bare_stop, bare = _start(bare_server, payloads)
        procs.append((bare_proc, bare_stop))

        results: dict[str, dict[str, Any]] = {}
        results["bare_before"] = run(f"{bare['url']}/hello", {})
        print(f"bare hello: {results['bare_before']}", flush=True)
        for name, url in reads.items():
            results[name] = run(url, auth)
            print(f"{name}: {results[name]}", flush=True)
        results["bare_after"] = run(f"{bare['url']}/hello", {})
        print(f"bare hello again: {results['bare_after']}", flush=True)
        for name in same:
            results[f"same_{name}"] = run(f"{bare['url']}/same/{name}", {})
            print(f"bare, the same answer as {name}: {results[f'same_{name}']}", flush=True)
            results[f"bytes_{name}"] = run(f"{bare['url']}/bytes/{name}", {})
            print(f"bare, its bytes: {results[f'bytes_{name}']}", flush=True)
    finally:
        for proc, stop in procs:
            stop.set()
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    baseline = statistics.mean([results["bare_before"]["rps"], results["bare_after"]["rps"]])
    value = min(results["cameras"]["rps"], results["timeline"]["rps"])
    ratio = value / baseline if baseline else 0.0
    errors = sum(r["errors"] for r in results.values())
    same_ratio, bytes_ratio = (
        min(
            results[n]["rps"] / results[f"{kind}_{n}"]["rps"]
            if results[f"{kind}_{n}"]["rps"]
            else 0.0
            for n in ("cameras", "timeline")
        )
        for kind in ("same", "bytes")
    )
    print(
        f"cameras {results['cameras']['rps']} req/s, timeline {results['timeline']['rps']} "
        f"req/s vs bare hello {baseline:.1f} req/s: ratio {ratio:.3f} (target >= {TARGET}); "
        f"vs a bare server sending the same answers: {same_ratio:.3f}, "
        f"the same bytes: {bytes_ratio:.3f}; client {args.client}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    print(
        json.dumps(
            {
                "bench": "api",
                "value": round(value, 1),
                "baseline": round(baseline, 1),
                "ratio": round(ratio, 3),
                "target": TARGET,
                "ok": ratio >= TARGET and errors == 0,
                "ratio_same_answer": round(same_ratio, 3),
                "ratio_same_bytes": round(bytes_ratio, 3),
                "client": args.client,
                "figures": results,
                "entries": entries,
            }
        )
    )


if __name__ == "__main__":
    main()
