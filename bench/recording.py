#!/usr/bin/env python3
"""B1 + B2: recording N streams, against N raw ffmpeg segmenters, in the same run.

Sources are pre-encoded clips at a fixed bitrate, read in real time in a loop
with stream copy (``-re -stream_loop -1``), so the hub and the baseline get
identical input and nothing is encoded during a run.

B1: CPU-seconds of the hub's whole process tree (Python + its ffmpeg
children) over N raw ``ffmpeg -c copy -f segment`` processes doing the same
work for the same time. Target: ratio <= 1.05, 0 lost segments, event-loop
lag p99 < 20 ms.
B2: time from ffmpeg listing a closed segment to its index row and bus
event (SegmentRecorded.latency). Target p99 < 100 ms.

The last line printed is the JSON result (B1; B2 is on the line before).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from csuhub.events import GapRecorded, SegmentRecorded  # noqa: E402
from csuhub.hub import Hub  # noqa: E402
from csuhub.recording.layout import FFMPEG_PATTERN  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(root_pid: int, include_self: bool = True) -> float:
    """utime+stime (s) of a process and all its live descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        stats[pid] = (int(fields[11]), int(fields[12]))
    total = 0
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        if pid != root_pid or include_self:
            total += sum(stats.get(pid, (0, 0)))
        stack.extend(children.get(pid, []))
    return total / TICKS


def make_clip(path: Path, bitrate: str) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
            "-t",
            "10",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-b:v",
            bitrate,
            "-maxrate",
            bitrate,
            "-bufsize",
            bitrate,
            str(path),
        ],
        check=True,
    )


def raw_args(clip: Path, out: Path, segment: int) -> list[str]:
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-re",
        "-stream_loop",
        "-1",
        "-i",
        str(clip),
        "-map",
        "0:v:0",
        "-an",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_time",
        str(segment),
        "-segment_format",
        "mp4",
        "-segment_format_options",
        "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1",
        "-reset_timestamps",
        "1",
        "-strftime",
        "1",
        "-segment_list",
        "pipe:1",
        "-segment_list_type",
        "csv",
        f"{out}/{FFMPEG_PATTERN}",
    ]


def _die_with_parent() -> None:
    """The baseline's ffmpeg must not outlive an interrupted benchmark."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)


def run_baseline(clip: Path, n: int, seconds: float, workdir: Path, segment: int) -> float:
    procs = []
    for i in range(n):
        out = workdir / f"raw{i}"
        for offset in (0, 3600):
            (out / time.strftime("%Y/%m/%d/%H", time.gmtime(time.time() + offset))).mkdir(
                parents=True, exist_ok=True
            )
        procs.append(
            subprocess.Popen(
                raw_args(clip, out, segment),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "TZ": "UTC"},
                preexec_fn=_die_with_parent,
            )
        )
    time.sleep(1.0)  # the same warm-up the hub gets: stream analysis is not steady state
    cpu0 = sum(tree_cpu(p.pid) for p in procs)
    time.sleep(seconds)
    cpu = sum(tree_cpu(p.pid) for p in procs) - cpu0
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    return cpu


async def run_hub(
    clip_dir: Path, n: int, bitrate: str, seconds: float, workdir: Path, segment: int
) -> dict[str, object]:
    cameras = [
        {
            "id": f"cam-{i:02d}",
            "driver": "simcam",
            "options": {
                "width": 1280,
                "height": 720,
                "fps": 25,
                "clip_seconds": 10,
                "bitrate": bitrate,
            },
            "authorization": {"reference": "B", "issued": "2022-01-01", "expires": "2099-01-01"},
        }
        for i in range(n)
    ]
    config = {
        "hub": {"web": {"port": 0}},
        "recording": {"segment": f"{segment}s"},
        "cameras": cameras,
    }
    hub = Hub(config, source="<bench>", data_dir=workdir / "hub", web=False)
    hub.setup()
    # pre-encode the clips (untimed): every camera reads the same one
    (workdir / "hub" / "simcam").mkdir(parents=True, exist_ok=True)
    for camera in cameras:
        from csuhub_simcam import SimulatedCamera

        sim = SimulatedCamera(
            hub,
            camera["id"],
            hub.registry.camera_drivers.get("simcam").config_schema(camera["options"]),
        )
        shutil.copy(clip_dir / f"clip-{bitrate}.mp4", sim.clip)
    latencies: list[float] = []
    gaps: list[GapRecorded] = []
    hub.bus.listen(SegmentRecorded, lambda e: latencies.append(e.latency))
    hub.bus.listen(GapRecorded, gaps.append)
    lags: list[float] = []

    async def lag_probe() -> None:
        # every 50 ms: a denser probe would itself cost CPU charged to the hub
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.05)
            lags.append(time.perf_counter() - t0 - 0.05)

    await hub.start()
    probe = asyncio.create_task(lag_probe())
    deadline = time.monotonic() + 30
    while len(hub.recording.recorders) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    cpu0 = tree_cpu(os.getpid())
    lags.clear()
    await asyncio.sleep(seconds)
    cpu = tree_cpu(os.getpid()) - cpu0
    probe.cancel()
    segments = 0
    damaged = 0
    for camera in cameras:
        rows = await hub.store.segments(camera["id"])
        segments += len(rows)
        damaged += sum(1 for r in rows if r.status != "ok")
    states = {s for s, _ in hub.recording.states.values()}
    await hub.stop()
    lags.sort()
    return {
        "cpu": cpu,
        "latencies": latencies,
        "lag_p99": lags[int(len(lags) * 0.99) - 1],
        "segments": segments,
        "lost": len(gaps) + damaged,
        "states": sorted(states),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 streams at 2 Mbit/s, 20 s")
    args = parser.parse_args()
    plan = (
        [(8, "2M")]
        if args.quick
        else [(8, "2M"), (8, "4M"), (25, "2M"), (25, "4M"), (50, "2M"), (50, "4M")]
    )
    seconds = 20.0 if args.quick else 60.0
    segment = 10
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpu, python "
        f"{platform.python_version()}; 1280x720 25 fps, {segment}s segments, {seconds:.0f}s"
    )
    worst_ratio = 0.0
    all_latencies: list[float] = []
    worst_lag = 0.0
    lost = 0
    with tempfile.TemporaryDirectory(prefix="csuhub-bench-rec-") as tmp:
        work = Path(tmp)
        for bitrate in sorted({b for _, b in plan}):
            make_clip(work / f"clip-{bitrate}.mp4", bitrate)
        for n, bitrate in plan:
            base = run_baseline(
                work / f"clip-{bitrate}.mp4", n, seconds, work / f"b{n}{bitrate}", segment
            )
            result = asyncio.run(
                run_hub(work, n, bitrate, seconds, work / f"h{n}{bitrate}", segment)
            )
            ratio = result["cpu"] / base if base else float("inf")
            lost += int(result["lost"])
            worst_ratio = max(worst_ratio, ratio)
            worst_lag = max(worst_lag, float(result["lag_p99"]))
            all_latencies.extend(result["latencies"])
            print(
                f"N={n:>2} {bitrate}: hub {result['cpu']:.2f} cpu-s, raw ffmpeg {base:.2f} "
                f"cpu-s, ratio {ratio:.3f}; {result['segments']} segments, {result['lost']} "
                f"gaps or damaged; loop lag p99 {float(result['lag_p99']) * 1000:.1f} ms"
            )
    all_latencies.sort()
    p99 = all_latencies[max(0, int(len(all_latencies) * 0.99) - 1)] if all_latencies else None
    print(
        f"B2 index latency: {len(all_latencies)} segments, median "
        f"{statistics.median(all_latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
        if p99 is not None
        else "B2: no segments"
    )
    print(
        json.dumps(
            {
                "bench": "index_latency",
                "value": p99 and round(p99, 4),
                "baseline": None,
                "ratio": None,
                "target": 0.1,
                "ok": p99 is not None and p99 < 0.1,
            }
        )
    )
    ok = worst_ratio <= 1.05 and lost == 0 and worst_lag < 0.02
    print(
        json.dumps(
            {
                "bench": "recording",
                "value": round(worst_ratio, 3),
                "baseline": 1.0,
                "ratio": round(worst_ratio, 3),
                "target": 1.05,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
