#!/usr/bin/env python3
"""B8 (issue 15 §4): a whole shift on one hub, against a bare asyncio loop in the same run.

One hub, in this process, for 30 minutes (``--quick``: 60 s at N=25):

* N cameras recording (the B1 cameras: ``benchcam`` reading one pre-encoded
  1280x720 25 fps clip at 2 Mbit/s with ``-re -stream_loop -1 -c copy``, each
  from its own GOP phase; ``bench/recording.py`` provides them), plus one
  RTSP camera served by a GStreamer RTSP server (``tests/peers``), the one
  the bench kills;
* a wall of four screens (three 2x2 grids, one spotlight of 4 tiles: 16 live
  tiles) watched by 4 browser-like kiosk viewers (``bench/soak_clients.py``);
* a signed webhook call every minute (quick: every 15 s), each opening an
  incident (nearest cameras held, the spotlight taking its screen), closed
  through the API a while later;
* retention sweeping under storage pressure: the footage goes to a small
  tmpfs (``--storage DIR`` for a file system of your own) and the
  ``storage_pressure`` policy keeps 40 % free, deleting the oldest footage;
* an evidence export every 5 minutes (quick: every 20 s), in the hub's
  process, as the API runs it;
* the API polled by 5 sessions (bearer tokens) every 2 s;
* the injected fault: the RTSP camera's server killed for 60 s (quick: 10 s)
  then restarted on the same port.

Measured: the hub's event-loop lag p99 (a 10 Hz probe on its loop) against
the same probe on a bare asyncio loop in another process running at the same
time (the baseline: what the machine's load alone costs; ``ratio``); RSS
growth of the hub's process after the first sixth of the run (5 of 30
minutes); gaps recorded, each one explained by the injected fault or not;
file descriptors and threads (flat); CPU per recording camera and bytes per
camera-second, for the sizing table of docs/benchmarks.md.

Targets: lag p99 < 20 ms; RSS growth < 5 %; 0 unexplained gaps; fds and
threads flat; every export and call answered. The last line printed is the
JSON object the other bench/ scripts print.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import json
import math
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE)]

import soak_figures as fig  # noqa: E402
from recording import BenchCameras, PhasedCamera, gop_offset, make_clip, runtime, snapshot  # noqa: E402
from soak_clients import probe  # noqa: E402
from soak_report import report  # noqa: E402

from csuhub.events import GapRecorded, RetentionAlert, RetentionSwept  # noqa: E402
from csuhub.recording.continuity import DESTROYED, LIVE, continuity, recorder_of  # noqa: E402
from csuhub.recording.export import export_evidence  # noqa: E402
from csuhub.testing import api_token, build_hub  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = ROOT / "tests" / "peers" / "gst_rtsp_server.py"
AUTH = {"reference": "B8", "issued": "2022-01-01", "expires": "2099-01-01"}
#: Lille, around the Grand-Place: cameras on a grid, calls near them
LAT0, LON0 = 50.630, 3.050
#: storage_pressure: act under 40 % free, free up to 60 %
MIN_FREE, TARGET_FREE = 40, 60


def plan(quick: bool, seconds: float | None, cameras: int | None) -> dict[str, Any]:
    """The shift's schedule. ``--quick`` compresses it into 60 s: a call every
    15 s, an export every 20 s, a sweep every 10 s, 10 s segments."""
    p: dict[str, Any] = (
        {"seconds": 60.0, "cameras": 25, "segment": 10, "sweep": 10, "call_every": 15.0}
        | {"close_after": 20.0, "hold": "10s", "export_every": 20.0, "export_back": (22, 12)}
        | {"fault_at": 0.3, "fault_for": 10.0, "sample_every": 2.0, "keep": 25.0}
        if quick
        else {"seconds": 1800.0, "cameras": 100, "segment": 60, "sweep": 30, "call_every": 60.0}
        | {"close_after": 180.0, "hold": "2m", "export_every": 300.0, "export_back": (110, 70)}
        | {"fault_at": 0.4, "fault_for": 60.0, "sample_every": 10.0, "keep": 120.0}
    )
    p["seconds"] = seconds or p["seconds"]
    p["fault_for"] = min(p["fault_for"], p["seconds"] / 5)
    p["cameras"] = cameras or p["cameras"]
    p["warm"] = p["seconds"] / 6  # the first 5 of 30 minutes
    p["poll_every"] = 2.0
    return p


def place(i: int) -> tuple[float, float]:
    """Camera i on a 10-wide grid, 150 m apart."""
    return LAT0 + (i // 10) * 0.00135, LON0 + (i % 10) * 0.0021


def site(
    p: dict[str, Any], storage: Path, bitrate: str, rtsp_port: int | None, secret: str
) -> dict[str, Any]:
    n = p["cameras"]
    cameras: list[dict[str, Any]] = [
        {
            "id": f"cam-{i:03d}",
            "driver": "benchcam",
            "options": {"start": gop_offset(i), "width": 1280, "height": 720, "fps": 25}
            | {"clip_seconds": 10, "bitrate": bitrate},
            "location": {"lat": place(i)[0], "lon": place(i)[1]},
            "authorization": AUTH,
        }
        for i in range(n)
    ]
    if rtsp_port is not None:
        cameras.append(
            {
                "id": "cam-fault",
                "driver": "rtsp",
                "options": {"url": "rtsp://{host}:{port}/fault", "host": "127.0.0.1"}
                | {"port": rtsp_port},
                "location": {"lat": place(0)[0] + 0.0003, "lon": place(0)[1]},
                "authorization": AUTH,
            }
        )
    grid = [c["id"] for c in cameras[:12]]
    screens: list[dict[str, Any]] = [
        {"id": f"g{k}", "layout": "grid", "cameras": grid[4 * k : 4 * k + 4]}
        | {"options": {"columns": 2, "rows": 2}}
        for k in range(3)
    ]
    screens.append(
        {"id": "spot", "layout": "spotlight", "cameras": [grid[0]]}
        | {"options": {"tiles": 4, "hold": p["hold"]}}
    )
    return {
        "hub": {"timezone": "UTC"},
        "recording": {"storage": str(storage), "segment": f"{p['segment']}s"},
        "cameras": cameras,
        "incidents": {"radius": 500, "max_cameras": 4},
        "call_lines": [{"id": "cad", "type": "webhook", "options": {"secret": secret}}],
        "walls": [{"id": "mur", "name": "Mur", "screens": screens}],
        "retention": {
            "interval": f"{p['sweep']}s",
            "policies": [
                {"policy": "max_age", "options": {}},
                {"policy": "incident_preservation", "options": {"enabled": True}},
                {
                    "policy": "storage_pressure",
                    "options": {"min_free_percent": MIN_FREE, "target_free_percent": TARGET_FREE}
                    | {"critical_free_percent": 2},
                },
            ],
        },
    }


def start_rtsp(port: int = 0) -> tuple[subprocess.Popen[str], int] | None:
    """The camera the bench kills: its own process, so killing it is a real
    source going away (the hub's recorder and health checks notice by themselves)."""
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("gst-launch-1.0") is None:
        return None
    args = [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(port), "--mounts", "fault"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY port="):
        proc.kill()
        proc.wait()
        return None
    return proc, int(line.split("=", 1)[1])


def mount_storage(path: Path, size_mb: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    args = ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)]
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


def process_figures() -> tuple[int, int, int]:
    """(RSS in KiB, open file descriptors, threads) of this process."""
    status = Path("/proc/self/status").read_text().splitlines()
    found = {
        k: int(v.split()[0])
        for k, _, v in (ln.partition(":") for ln in status)
        if k in ("VmRSS", "Threads")
    }
    return found["VmRSS"], len(os.listdir("/proc/self/fd")), found["Threads"]


async def step(name: str, work: Any, limit: float) -> Any:
    """``work``, awaited under ``limit`` seconds with its start and end printed:
    the wind-down of a long run must end or say where it hung. On expiry every
    task's and thread's stack is printed, then the timeout raises."""
    began = time.monotonic()
    print(f"  {name}...", flush=True)
    try:
        async with asyncio.timeout(limit):
            result = await work
    except TimeoutError:
        print(f"  {name}: still waiting after {limit:.0f} s; the tasks and threads:", flush=True)
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stdout)
        executor = getattr(asyncio.get_running_loop(), "_default_executor", None)
        if executor is not None:
            print(f"  default executor: {executor._work_queue.qsize()} queued", flush=True)
        faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
        raise
    print(f"  {name}: {time.monotonic() - began:.1f} s", flush=True)
    return result


def cpu_reading(exclude: set[int]) -> dict[str, Any]:
    """This process (to the µs), its reaped children, and each live descendant's
    CPU-seconds with what it is (a recorder's ffmpeg cuts segments)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    children, ticks = snapshot()
    alive: dict[int, tuple[str, float]] = {}
    stack = [p for p in children.get(os.getpid(), []) if p not in exclude]
    while stack:
        pid = stack.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        kind = "recorder" if b"segment_list" in cmd else "other"
        alive[pid] = (kind, ticks.get(pid, 0.0))
        stack.extend(children.get(pid, []))
    return {
        "self": me.ru_utime + me.ru_stime,
        "reaped": kids.ru_utime + kids.ru_stime,
        "alive": alive,
    }


def cpu_between(a: dict[str, Any], b: dict[str, Any], excluded_reaped: float) -> dict[str, float]:
    """CPU-seconds spent between two readings: python, the recorders' ffmpeg, the
    other children (live upstreams, exports, snapshots), including those that
    ended meanwhile (reaped), less what the bench's own reaped children used."""
    out = {"python": b["self"] - a["self"], "recorder": 0.0, "other": 0.0}
    for pid, (kind, cpu) in b["alive"].items():
        out[kind] += cpu - a["alive"].get(pid, (kind, 0.0))[1]
    out["other"] += max(0.0, b["reaped"] - a["reaped"] - excluded_reaped)
    return out


def payload(path: Path) -> tuple[int, float]:
    """A file's video payload (its packets' bytes, not its container's) and duration."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size",
         "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    return sum(int(pk["size"]) for pk in data["packets"]), float(data["format"]["duration"])


def container_overhead(paths: list[Path]) -> float:
    """What the segments' MP4 boxes (moov, one moof per 0.5 s fragment) add to
    the video they carry: file bytes over payload bytes, minus one."""
    files = carried = 0
    for path in paths:
        try:
            size, (bytes_, _) = path.stat().st_size, payload(path)
        except (OSError, subprocess.CalledProcessError, KeyError, ValueError):
            continue  # destroyed by a sweep meanwhile
        files, carried = files + size, carried + bytes_
    return files / carried - 1 if carried else math.nan


async def run(
    p: dict[str, Any], work: Path, bitrate: str, storage_arg: str | None
) -> dict[str, Any]:
    n = p["cameras"]
    rate = n * int(bitrate.rstrip("M")) * 1e6 / 8  # bytes/s the cameras write
    storage = Path(storage_arg) if storage_arg else work / "storage"
    size_mb = math.ceil(rate * p["keep"] / (1 - TARGET_FREE / 100) / 1e6)
    mounted = False
    if storage_arg is None:
        mounted = mount_storage(storage, size_mb)
        print(
            f"storage: tmpfs of {size_mb} MB (footage kept under pressure: ~{p['keep']:.0f} s)"
            if mounted
            else "storage: could not mount a tmpfs (not root?): no storage pressure this run"
        )
    clip = work / f"clip-{bitrate}.mp4"
    make_clip(clip, bitrate)
    rtsp = start_rtsp()
    if rtsp is None:
        print("no GStreamer RTSP server (./scripts/install.sh --test): no fault injected")
    secret = secrets.token_hex(16)
    config = site(p, storage, bitrate, rtsp[1] if rtsp else None, secret)
    hub = build_hub(work / "data", config, plugins=[("bench", BenchCameras())], web=True)
    (hub.data_dir / "simcam").mkdir(parents=True, exist_ok=True)
    spec = hub.registry.camera_drivers.get("benchcam")
    for camera in config["cameras"][:n]:
        os.link(clip, PhasedCamera(hub, camera["id"], spec.config_schema(camera["options"])).clip)
    gaps: list[fig.Gap] = []
    swept: list[RetentionSwept] = []
    alerts: list[str] = []
    hub.bus.listen(
        GapRecorded, lambda e: gaps.append(fig.Gap(e.camera_id, e.start, e.end, e.reason))
    )
    hub.bus.listen(RetentionSwept, swept.append)
    hub.bus.listen(RetentionAlert, lambda e: alerts.append(e.kind))
    started = time.monotonic()
    await hub.start()
    result: dict[str, Any] = {"storage_mb": size_mb if mounted else None}
    try:
        deadline = time.monotonic() + 120
        while len(hub.recording.recorders) < len(config["cameras"]) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        print(
            f"hub up, {len(hub.recording.recorders)} recorders, "
            f"in {time.monotonic() - started:.1f} s"
        )
        result |= await shift(hub, p, work, rtsp, secret, swept, alerts)
        cameras = [c["id"] for c in config["cameras"]]
        result["holes"] = await step(
            "the continuity reports", holes(hub, cameras, result["wall0"]), 300
        )
        # the recorder's own word too: the continuity report shows a hole inside a
        # range retention destroyed afterwards as destroyed (the register's range)
        result["events"] = [g for g in gaps if g.end >= result["wall0"]]
        result["recovered"] = [
            any(s.start >= up for s in await hub.store.segments(camera, up, time.time()))
            for camera, _, up in result["faults"]
        ]
        result["segments"], result["bytes_per_s"], kept = await step(
            "the footage kept", footage(hub, n), 120
        )
        carried, duration = payload(clip)
        result["clip_bps"] = carried * 8 / duration
        result["overhead"] = await step(
            "the container's share",
            asyncio.to_thread(container_overhead, [storage / path for path in kept[:30]]),
            120,
        )
        # judged and printed before the hub stops: a stop that hangs loses nothing
        result["line"] = report(p, result, bitrate)
    finally:
        try:
            await step("the hub's stop", hub.stop("soak finished"), 180)
        finally:
            if mounted:
                subprocess.run(["umount", "-l", str(storage)], check=False)
    return result


async def holes(hub: Any, cameras: list[str], since: float) -> list[fig.Gap]:
    """Every hole in each camera's footage from its first segment of the shift
    to now, as the continuity report (``GET /api/recordings/{id}/gaps``) gives
    it: footage destroyed by retention and the segment being recorded are not
    holes; not recorded, damaged, or unexplained time is. A camera with no
    segment at all in the shift is one hole over the whole shift."""
    found: list[fig.Gap] = []
    now = time.time()
    for camera in cameras:
        segments = await hub.store.segments(camera, since, now)
        if not segments:
            found.append(fig.Gap(camera, since, now, "no footage in the whole shift"))
            continue
        start = max(since, segments[0].start)
        report = await continuity(hub.store, camera, start, now, recorder=recorder_of(hub, camera))
        for piece in report["gaps"]:
            if piece["state"] not in (*LIVE, DESTROYED):
                reason = f"{piece['state']}: {piece.get('reason')}"
                found.append(fig.Gap(camera, piece["start"], piece["end"], reason))
    return found


async def footage(hub: Any, n: int) -> tuple[int, float, list[str]]:
    """Segments still indexed, the mean bytes per second of footage they hold,
    and their paths (relative to the storage root), one camera after another."""
    count, size, span, paths = 0, 0, 0.0, []
    for i in range(n):
        for row in await hub.store.segments(f"cam-{i:03d}"):
            if row.status == "ok":
                count, size, span = count + 1, size + row.size, span + (row.end - row.start)
                paths.append(row.path)
    # the newest first (the oldest may go in the next sweep), across cameras
    paths.sort(key=lambda path: Path(path).name, reverse=True)
    return count, size / span if span else math.nan, paths


async def shift(
    hub: Any, p: dict[str, Any], work: Path, rtsp: Any, secret: str,
    swept: list[RetentionSwept], alerts: list[str],
) -> dict[str, Any]:  # fmt: skip
    seconds, n = p["seconds"], p["cameras"]
    ids = [f"cam-{i:03d}" for i in range(n)]
    spec = {
        "url": hub.web.url, "wall": "mur", "end": time.time() + seconds, "cameras": ids,
        "kiosks": [await api_token(hub, "operator") for _ in range(4)],
        "pollers": [await api_token(hub, "admin") for _ in range(5)],
        "admin": await api_token(hub, "admin"), "secret": secret, "line": "cad",
        "places": [place(i) for i in range(min(n, 12))],
    } | {k: p[k] for k in ("call_every", "close_after", "poll_every")}  # fmt: skip
    helper = str(HERE / "soak_clients.py")
    bare = subprocess.Popen(
        [sys.executable, helper, "--bare", str(seconds)], stdout=subprocess.PIPE, text=True
    )
    clients = subprocess.Popen(
        [sys.executable, helper, "--clients", json.dumps(spec)], stdout=subprocess.PIPE, text=True
    )
    exclude = {bare.pid, clients.pid} | ({rtsp[0].pid} if rtsp else set())
    t0 = time.monotonic()
    wall0 = time.time()
    samples: list[tuple[float, int, int, int]] = []
    readings: dict[str, dict[str, Any]] = {}
    faults: list[tuple[str, float, float]] = []
    exports: dict[str, Any] = {"ok": 0, "failed": [], "s": []}
    lags_task = asyncio.create_task(probe(seconds))
    gst_reaped = [0.0]

    async def sampler() -> None:
        shown = 0.0
        while (t := time.monotonic() - t0) < seconds:
            samples.append((t, *process_figures()))
            if t - shown >= 60:  # a long run shows it is alive, and how it fares
                shown = t
                rss, fds, threads = samples[-1][1:]
                print(
                    f"  {t:5.0f} s: RSS {rss / 1024:.0f} MiB, {fds} fds, {threads} threads, "
                    f"{len(swept)} sweeps, {exports['ok']} exports ({len(exports['failed'])} "
                    f"failed)",
                    flush=True,
                )
            if "warm" not in readings and t >= p["warm"]:
                readings["warm"] = await asyncio.to_thread(cpu_reading, exclude)
            await asyncio.sleep(p["sample_every"])

    async def exporter() -> None:
        k = 0
        while time.monotonic() - t0 + p["export_every"] < seconds:
            await asyncio.sleep(p["export_every"])
            k += 1
            now = time.time()
            began = time.perf_counter()
            try:
                await export_evidence(
                    hub, hub.recording, ids[k % n],
                    now - p["export_back"][0], now - p["export_back"][1],
                    user="soak", reason="soak benchmark", output=work / f"export-{k}.zip",
                )  # fmt: skip
                exports["ok"] += 1
                exports["s"].append((round(now - wall0), round(time.perf_counter() - began, 2)))
            except Exception as err:  # counted and printed: the shift goes on
                exports["failed"].append(f"{type(err).__name__}: {err}")
            (work / f"export-{k}.zip").unlink(missing_ok=True)

    async def fault() -> None:
        nonlocal rtsp
        if rtsp is None:
            return
        await asyncio.sleep(p["fault_at"] * seconds)
        proc, port = rtsp
        gst_reaped[0] = runtime(proc.pid) or 0.0  # its CPU is not the hub's
        down = time.time()
        proc.kill()
        await asyncio.to_thread(proc.wait)
        await asyncio.sleep(p["fault_for"])
        rtsp = await asyncio.to_thread(start_rtsp, port)
        if rtsp is not None:
            exclude.add(rtsp[0].pid)
        faults.append(("cam-fault", down, time.time()))
        print(
            f"fault: cam-fault's RTSP server down at {down - wall0:.0f} s "
            f"for {time.time() - down:.1f} s, "
            f"back: {rtsp is not None}"
        )

    await asyncio.gather(sampler(), exporter(), fault())
    print(f"shift over at {time.monotonic() - t0:.0f} s; winding down:", flush=True)
    # a loop blocked outright fires no timeout: every thread's stack, every 15 minutes
    faulthandler.dump_traceback_later(900, repeat=True, file=sys.stdout)
    readings["end"] = await step("CPU reading", asyncio.to_thread(cpu_reading, exclude), 60)
    samples.append((time.monotonic() - t0, *process_figures()))
    lags = await step("the hub's lag probe", lags_task, 30)
    bare_out, _ = await step("the bare loop", asyncio.to_thread(bare.communicate), 60)
    clients_out, _ = await step(
        "the clients' report", asyncio.to_thread(clients.communicate, timeout=60), 90
    )
    await asyncio.sleep(1.0)  # a segment indexed just now may carry a gap
    if rtsp is not None:
        rtsp[0].terminate()
        await step("the RTSP server's exit", asyncio.to_thread(rtsp[0].wait, 30), 40)
    window = seconds - p["warm"]
    cpu = cpu_between(readings["warm"], readings["end"], gst_reaped[0])
    return {
        "lags": lags, "bare": json.loads(bare_out)["lags"], "clients": json.loads(clients_out),
        "samples": samples, "cpu": cpu, "cpu_window": window, "exports": exports,
        "faults": faults, "wall0": wall0,
        "swept": [(s.segments, s.bytes, dict(s.by_policy)) for s in swept], "alerts": alerts,
    }  # fmt: skip


async def collected(work: Any) -> dict[str, Any]:
    """``work``'s result, after a collection while the loop still runs: the hub's
    subprocess transports it dropped close on a live loop, not at exit."""
    result = await work
    gc.collect()
    await asyncio.sleep(0.1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s at N=25 (about 90 s in all)")
    parser.add_argument("--seconds", type=float, help="the shift's length (default 1800)")
    parser.add_argument("--cameras", type=int, help="cameras recording (default 100)")
    parser.add_argument("--bitrate", default="2M", choices=["2M", "4M"])
    parser.add_argument(
        "--storage", help="record here (a small file system of yours) instead of a tmpfs"
    )
    args = parser.parse_args()
    p = plan(args.quick, args.seconds, args.cameras)
    print(
        f"B8 soak: {p['cameras']} cameras at {args.bitrate}bit/s + 1 RTSP camera, 16 wall tiles, "
        f"4 kiosks, 5 API sessions, {p['seconds']:.0f} s; {platform.machine()}, "
        f"{os.cpu_count()} cpu, "
        f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="csuhub-bench-soak-") as tmp:
        result = asyncio.run(collected(run(p, Path(tmp), args.bitrate, args.storage)))
    faulthandler.cancel_dump_traceback_later()
    line = result["line"]
    line["wall_s"] = round(time.monotonic() - began, 1)
    print(json.dumps(line))
    return 0 if line["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
