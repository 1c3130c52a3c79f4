#!/usr/bin/env python3
"""B6: live video, 4 camera streams at 2-4 Mbit/s watched by 16, then 64, WebSocket viewers.

Parts, each its own process so that each one's CPU is its own:

* the source: a GStreamer RTSP server (Debian's ``/usr/bin/python3`` runs
  this file with ``--source``) with 4 mounts fed by ``appsrc``: noise (for
  the bitrate) with a **timestamp stripe** on top: the wall-clock time in
  ms (mod 2^32) when the frame was made, as 32 black/white blocks of 20x48
  pixels. x264 ``zerolatency`` encodes it at a constant bitrate. Machine
  readable, where ``clockoverlay`` text would need OCR;
* the hub (``--hub``): a real hub with 4 RTSP cameras and the web server;
* the baseline (``--relay``): a bare asyncio relay of the same bytes: the
  same ffmpeg command (``csuhub.live.command``) per camera, each chunk read
  from its pipe written to every plain TCP client of that camera;
* the viewers (``--viewers``, two processes): for the hub, WebSockets
  opened by hand (the HTTP upgrade with a bearer token) whose bytes are then
  read as they come, 256 KiB at a time: exactly what the relay's plain TCP
  readers do, so both servers meet the same readers. (Until 2026-11-30
  aiohttp's client read the hub's frames, parsing each in Python; the
  ratio read the same either way, within the runs' spread.)

CPU ratio: CPU seconds of the hub process (its own threads; ffmpeg is a
child and counted apart) per delivered Mbit, over the same window, divided
by the relay's. Target <= 1.5. Each side's idle CPU is measured too, with
its 4 ffmpeg pipes read and no viewer (the hub keeps its upstreams for the
whole run: a long grace period): ``ratio`` includes it (the target is judged
on it), ``ratio_net`` subtracts each side's own idle (the fan-out alone).
The hub's idle with no upstream at all (health checks, timers) is reported.

Glass-to-glass latency: one probe viewer per camera keeps what it receives
with each fragment's arrival time; afterwards ffmpeg decodes the stripe of
every frame, and latency = arrival - the time written in the frame (same
host clock). It includes encoding, RTSP, the hub and the socket, not the
browser's decoder and display. Target < 1 s.

First frame: a viewer joining a running camera gets the cached GOP at once
(warm, target <= 1 GOP + 300 ms); the first viewer of a camera waits for
the RTSP set-up and the next keyframe (cold, reported).

    python bench/live.py            # 16 and 64 viewers, 10 s windows
    python bench/live.py --quick    # under a minute

The last line is the JSON object the other bench/ scripts print.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAMERAS = 4
WIDTH, HEIGHT, FPS, KBPS = 640, 360, 15, 3000
GOP_S = 1.0
BITS, BLOCK_W, STRIPE_H = 32, 20, 48
SYSTEM_PYTHON = "/usr/bin/python3"


# -- the source (Debian's python3, GStreamer) ------------------------------------------


def stripe(stamp: int) -> bytes:
    """STRIPE_H rows of luma: bit i (LSB first) of ``stamp`` is block i, white for 1."""
    row = bytearray(WIDTH)
    for i in range(BITS):
        if stamp >> i & 1:
            row[i * BLOCK_W : (i + 1) * BLOCK_W] = b"\xff" * BLOCK_W
    return bytes(row) * STRIPE_H


def run_source(port: int) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    noise = [os.urandom(WIDTH * (HEIGHT - STRIPE_H)) for _ in range(8)]
    chroma = bytes([128]) * (WIDTH * HEIGHT // 2)
    appsrcs: list[Any] = []
    counter = [0]

    def push() -> bool:
        stamp = int(time.time() * 1000) & 0xFFFFFFFF
        data = stripe(stamp) + noise[counter[0] % len(noise)] + chroma
        counter[0] += 1
        for src in list(appsrcs):
            buf = Gst.Buffer.new_wrapped(data)
            if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                appsrcs.remove(src)
        return True

    def configure(_factory: Any, media: Any) -> None:
        appsrcs.append(media.get_element().get_by_name("src"))

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    for cam in range(CAMERAS):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( appsrc name=src is-live=true do-timestamp=true format=time "
            f"caps=video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1 "
            f"! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast bitrate={KBPS} "
            f"key-int-max={int(FPS * GOP_S)} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)
        factory.connect("media-configure", configure)
        server.get_mount_points().add_factory(f"/cam{cam}", factory)
    source = server.create_source(None)
    source.attach(None)
    GLib.timeout_add(int(1000 / FPS), push)
    print(f"READY port={server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


# -- the hub and the relay (the project's venv) ---------------------------------------


def _site(port: int, data: str) -> dict[str, Any]:
    auth = {"reference": "B6", "issued": "2022-01-01", "expires": "2099-01-01"}
    return {
        "cameras": [
            {
                "id": f"cam-{i}",
                "driver": "rtsp",
                "options": {
                    "url": f"rtsp://{{host}}:{{port}}/cam{i}",
                    "host": "127.0.0.1",
                    "port": port,
                },
                "authorization": auth,
            }
            for i in range(CAMERAS)
        ],
        # no recorder: the hub's CPU is live video's (and its idle work)
        "recording": {"backend": "none", "storage": data},
    }


async def run_hub(port: int) -> None:
    import asyncio
    import tempfile

    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from csuhub.testing import api_token, make_hub

    with tempfile.TemporaryDirectory() as data:
        async with make_hub(Path(data), _site(port, data), web=True, sweeping=False) as hub:
            token = await api_token(hub, "operator")
            hub.live.settings.grace = 3600.0  # upstreams stay: idle = pipes read, no viewer
            # the bench's 64 viewers share one token: lift the per-principal cap (16)
            hub.live.settings.per_principal = 1024
            hub.live.settings.max_sockets = 1024
            if os.environ.get("B6_SEND_BUFFER"):  # bytes; 0: the kernel's autotuning
                hub.live.settings.send_buffer = int(os.environ["B6_SEND_BUFFER"])
            if os.environ.get("B6_PROFILE"):  # cProfile of the hub's loop, written at exit
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            print(json.dumps({"url": hub.web.url, "token": token}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            if os.environ.get("B6_PROFILE"):
                profiler.disable()
                profiler.dump_stats(os.environ["B6_PROFILE"])


async def run_relay(port: int) -> None:
    import asyncio
    from types import SimpleNamespace

    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from csuhub.live.command import copy_args, ffmpeg_binary, input_args

    clients: dict[int, set[asyncio.Transport]] = {i: set() for i in range(CAMERAS)}

    async def pump(cam: int) -> None:
        source = SimpleNamespace(url=f"rtsp://127.0.0.1:{port}/cam{cam}", input_options={})
        args = copy_args(ffmpeg_binary(), input_args(source, 5.0), 0.1)
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(256 * 1024):
            for transport in clients[cam]:
                transport.write(chunk)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cam = int((await reader.readline()).strip())
        transport = writer.transport
        clients[cam].add(transport)  # type: ignore[arg-type]
        try:
            await reader.read()  # until the client leaves
        except ConnectionError:
            pass  # a reader that left with bytes unread: a reset
        finally:
            clients[cam].discard(transport)  # type: ignore[arg-type]

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    tasks = [asyncio.create_task(pump(cam)) for cam in range(CAMERAS)]
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in tasks:
        task.cancel()


# -- viewers ---------------------------------------------------------------------------


async def run_viewers(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec``: mode (ws|tcp), where, count, first camera, window [start, end] (epoch)."""
    import asyncio

    start, end = spec["window"]
    counted = [0]

    async def count(data_len: int) -> None:
        now = time.time()
        if start <= now <= end:
            counted[0] += data_len

    async def ws_viewer(cam: int) -> None:
        """The WebSocket opened by hand, then its bytes read as the relay's
        readers read theirs: the same client work on both sides."""
        host, port = spec["url"].removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /api/live/cam-{cam}?stream=main HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\nAuthorization: Bearer {spec['token']}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"no WebSocket: {head[:80]!r}")
        while data := await reader.read(256 * 1024):
            await count(len(data))
            if time.time() > end:
                break
        writer.close()

    async def tcp_viewer(cam: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", spec["port"])
        writer.write(f"{cam}\n".encode())
        while data := await reader.read(256 * 1024):
            await count(len(data))
            if time.time() > end:
                break
        writer.close()

    cams = [(spec["first"] + i) % CAMERAS for i in range(spec["count"])]
    jobs = [ws_viewer(c) if spec["mode"] == "ws" else tcp_viewer(c) for c in cams]
    done = await asyncio.wait_for(
        asyncio.gather(*jobs, return_exceptions=True), end - time.time() + 10
    )
    failed = [repr(e) for e in done if isinstance(e, Exception)]
    if failed:  # said, and seen in the delivered Mbit/s; the run goes on
        print(f"{len(failed)} viewers failed: {failed[0][:200]}", file=sys.stderr)
    return {"bytes": counted[0], "failed": len(failed)}


async def probe(url: str, token: str, cam: int, seconds: float) -> dict[str, Any]:
    """A viewer that keeps the stream and each fragment's arrival time."""
    import asyncio

    import aiohttp

    sys.path[:0] = [str(ROOT)]
    from csuhub.live.fmp4 import Segmenter

    segmenter: Segmenter | None = None
    kept: list[tuple[float, bytes, int]] = []  # arrival, fragment, samples
    init = b""
    began = time.time()
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.ws_connect(f"{url}/api/live/cam-{cam}?stream=main", max_msg_size=0) as ws,
    ):
        async with asyncio.timeout(seconds + 15):
            async for msg in ws:
                now = time.time()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    if json.loads(msg.data)["type"] == "init":
                        segmenter = Segmenter()
                    continue
                assert segmenter is not None
                for item in segmenter.feed(msg.data):
                    if item[0] == "init":
                        init = item[1]  # type: ignore[assignment]
                    else:
                        kept.append((now, item[1].data, item[1].samples))  # type: ignore[union-attr]
                if kept and now - kept[0][0] > seconds:
                    break
    return {"init": init, "kept": kept, "first": kept[0][0] - began if kept else None}


def latencies(init: bytes, kept: list[tuple[float, bytes, int]]) -> list[float]:
    """Arrival minus the time written in each frame, in seconds."""
    stream = init + b"".join(k[1] for k in kept)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "-", "-vf", f"crop={WIDTH}:{STRIPE_H}:0:0",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        input=stream, capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    arrivals = [k[0] for k in kept for _ in range(k[2])]
    frame = WIDTH * STRIPE_H
    found = []
    for n in range(min(len(raw) // frame, len(arrivals))):
        rows = raw[n * frame : (n + 1) * frame]
        line = rows[(STRIPE_H // 2) * WIDTH : (STRIPE_H // 2 + 1) * WIDTH]
        stamp = sum(1 << i for i in range(BITS) if line[i * BLOCK_W + BLOCK_W // 2] > 128)
        now_ms = int(arrivals[n] * 1000)
        delta = ((now_ms - stamp) & 0xFFFFFFFF) / 1000
        if delta < 30:  # a misread stripe gives nonsense, not a plausible delay
            found.append(delta)
    return found


# -- the orchestra ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads, to the nanosecond (schedstat; the
    clock ticks of /proc/PID/stat are 10 ms, too coarse for a 5 s window)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def child(*args: str, python: str = sys.executable) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [python, str(Path(__file__).resolve()), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.startswith("READY"):
        return proc, {"port": int(line.split("=")[1])}
    return proc, json.loads(line)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(5)


def idle(server: subprocess.Popen[str], window: float) -> float:
    """CPU seconds per second of ``server`` with no viewer."""
    cpu0 = cpu_seconds(server.pid)
    time.sleep(window)
    return (cpu_seconds(server.pid) - cpu0) / window


def measure(
    server: subprocess.Popen[str], spec: dict[str, Any], viewers: int, warm: float, window: float
) -> dict[str, float]:
    start = time.time() + warm
    half = viewers // 2
    procs = []
    for first, count in ((0, half), (half, viewers - half)):
        part = {**spec, "count": count, "first": first, "window": [start, start + window]}
        procs.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--viewers", json.dumps(part)],
            stdout=subprocess.PIPE, text=True,
        ))  # fmt: skip
    time.sleep(max(0.0, start - time.time()))
    cpu0 = cpu_seconds(server.pid)
    time.sleep(window)
    cpu = cpu_seconds(server.pid) - cpu0
    delivered = sum(json.loads(p.communicate(timeout=window + 30)[0])["bytes"] for p in procs)
    mbits = delivered * 8 / 1e6
    return {
        "cpu_s": cpu,
        "mbit": mbits,
        "mbit_s": mbits / window,
        "cpu_per_mbit": cpu / max(mbits, 1e-9),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s windows, under a minute")
    parser.add_argument("--source", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hub", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--viewers", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.source is not None:
        return run_source(args.source)
    import asyncio

    if args.hub is not None:
        asyncio.run(run_hub(args.hub))
        return 0
    if args.relay is not None:
        asyncio.run(run_relay(args.relay))
        return 0
    if args.viewers:
        print(json.dumps(asyncio.run(run_viewers(json.loads(args.viewers)))))
        return 0

    # --quick stays under a minute: shorter windows, shorter waits before the
    # idle readings (not before the viewers' windows: 64 connecting viewers'
    # audit entries take about a second), and its four cold starts run
    # together (a wall screen opening four tiles) instead of in turn
    window, warm = (5.0, 3.0) if args.quick else (10.0, 4.0)
    print(f"B6 live: {CAMERAS} cameras {WIDTH}x{HEIGHT}@{FPS} at {KBPS} kbit/s, GOP {GOP_S:g} s")
    source, got = child("--source", "0", python=SYSTEM_PYTHON)
    port = got["port"]
    results: dict[str, Any] = {}
    try:
        hub, info = child("--hub", str(port))
        try:
            time.sleep(1.0 if args.quick else warm)  # settled: it printed its URL once started
            hub_bare = idle(hub, 3.0 if args.quick else window)  # no upstream: timers
            # first frames and latency, with no other load: cold (first viewer), warm (second)
            if args.quick:
                cold = [p["first"] for p in asyncio.run(_probes(info["url"], info["token"], 0.5))]
            else:
                cold = [
                    asyncio.run(probe(info["url"], info["token"], c, 0.5))["first"]
                    for c in range(CAMERAS)
                ]
            probes = asyncio.run(_probes(info["url"], info["token"], 4.0 if args.quick else 10.0))
            lat = sorted(x for p in probes for x in latencies(p["init"], p["kept"]))
            warm_first = [p["first"] for p in probes]
            hub_idle = idle(hub, window)  # the 4 upstreams running, no viewer
            hub_runs = {
                n: measure(
                    hub, {"mode": "ws", "url": info["url"], "token": info["token"]}, n, warm, window
                )
                for n in (16, 64)
            }
        finally:
            stop(hub)
        relay, rinfo = child("--relay", str(port))
        try:
            time.sleep(2.0 if args.quick else warm)  # its 4 RTSP sessions set up
            relay_idle = idle(relay, window)  # the 4 pipes read, no client
            relay_runs = {
                n: measure(relay, {"mode": "tcp", "port": rinfo["port"]}, n, warm, window)
                for n in (16, 64)
            }
        finally:
            stop(relay)
    finally:
        source.terminate()
        source.wait(5)
    for n in (16, 64):
        h, r = hub_runs[n], relay_runs[n]
        ratio = h["cpu_per_mbit"] / r["cpu_per_mbit"] if r["cpu_per_mbit"] > 0 else float("inf")
        net_h, net_r = h["cpu_s"] - hub_idle * window, r["cpu_s"] - relay_idle * window
        net = (net_h / h["mbit"]) / (net_r / r["mbit"]) if net_r > 0 else float("inf")
        results[n] = {"hub": h, "relay": r, "ratio": ratio, "ratio_net": net}
        hub_pct, relay_pct = h["cpu_s"] / window * 100, r["cpu_s"] / window * 100
        print(f"{n:3d} viewers: hub {h['mbit_s']:6.1f} Mbit/s, {hub_pct:5.1f} % CPU"
              f" | relay {r['mbit_s']:6.1f} Mbit/s, {relay_pct:5.1f} % CPU"
              f" | CPU per Mbit ratio {ratio:.2f}, net of idle {net:.2f}")  # fmt: skip
    print(f"idle: hub {hub_bare * 100:.2f} % CPU with no upstream, {hub_idle * 100:.2f} %"
          f" with 4 upstreams, no viewer | relay {relay_idle * 100:.2f} % (4 pipes)")  # fmt: skip
    p50 = lat[len(lat) // 2] if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
    print(f"glass-to-glass: {len(lat)} frames, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    warm_ms, cold_ms = max(warm_first) * 1000, max(cold) * 1000
    print(f"first fragment: warm max {warm_ms:.0f} ms, cold max {cold_ms:.0f} ms")
    ok = (
        all(results[n]["ratio"] <= 1.5 for n in (16, 64))
        and p99 < 1.0
        and max(warm_first) <= GOP_S + 0.3
    )
    print(json.dumps({
        "bench": "live",
        # the house keys: hub CPU per delivered Mbit at 64 viewers, against the relay's
        "value": round(results[64]["hub"]["cpu_s"] / max(results[64]["hub"]["mbit_s"], 1e-9), 6),
        "baseline": round(
            results[64]["relay"]["cpu_s"] / max(results[64]["relay"]["mbit_s"], 1e-9), 6
        ),
        "ratio": round(results[64]["ratio"], 3),
        "target": 1.5,
        "cameras": CAMERAS,
        "kbps": KBPS,
        "gop_s": GOP_S,
        "window_s": window,
        **{f"v{n}_{k}": round(results[n][side][m], 3) for n in (16, 64) for side, k, m in (
            ("hub", "hub_mbit_s", "mbit_s"), ("hub", "hub_cpu_s", "cpu_s"),
            ("relay", "relay_mbit_s", "mbit_s"), ("relay", "relay_cpu_s", "cpu_s"))},
        "ratio_16": round(results[16]["ratio"], 3),
        "ratio_64": round(results[64]["ratio"], 3),
        "ratio_net_16": round(results[16]["ratio_net"], 3),
        "ratio_net_64": round(results[64]["ratio_net"], 3),
        "idle_hub_bare_pct": round(hub_bare * 100, 3),
        "idle_hub_pct": round(hub_idle * 100, 3),
        "idle_relay_pct": round(relay_idle * 100, 3),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "latency_frames": len(lat),
        "latency_p50_ms": round(p50 * 1000, 1),
        "latency_p99_ms": round(p99 * 1000, 1),
        "first_warm_max_ms": round(max(warm_first) * 1000, 1),
        "first_cold_max_ms": round(max(cold) * 1000, 1),
        "ok": ok,
    }))  # fmt: skip
    return 0


async def _probes(url: str, token: str, seconds: float) -> list[dict[str, Any]]:
    import asyncio

    return list(await asyncio.gather(*(probe(url, token, c, seconds) for c in range(CAMERAS))))


if __name__ == "__main__":
    sys.exit(main())
