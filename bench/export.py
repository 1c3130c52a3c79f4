#!/usr/bin/env python3
"""B5: evidence export against a raw ffmpeg concat of the same segments, same run.

Segments: 60 s, 1280x720 25 fps at 2 Mbit/s, stream-copied from one clip and
laid out as the recorder does (untimed set-up, indexed by the hub's start-up
reconciliation). Timed: csuhub's export (source hashes verified, concat and
trim with stream copy, output hashed, manifest signed, zip written) versus
``ffmpeg -f concat -c copy`` of the same list, for 60 s and 15 min ranges that
cross segment boundaries. Target: ratio <= 1.15. Last line: the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from csuhub.hub import Hub  # noqa: E402
from csuhub.recording.export import export_evidence  # noqa: E402
from csuhub.recording.layout import hour_dir  # noqa: E402

SEGMENT = 60


def build_segments(work: Path, minutes: int, t0: float) -> Path:
    clip = work / "clip.mp4"
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
            "20",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-b:v",
            "2M",
            "-maxrate",
            "2M",
            "-bufsize",
            "2M",
            str(clip),
        ],
        check=True,
    )
    staging = work / "staging"
    staging.mkdir()
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-stream_loop",
            "-1",
            "-i",
            str(clip),
            "-t",
            str(minutes * SEGMENT),
            "-c",
            "copy",
            "-f",
            "segment",
            "-segment_time",
            str(SEGMENT),
            "-reset_timestamps",
            "1",
            "-segment_format",
            "mp4",
            str(staging / "%05d.mp4"),
        ],
        check=True,
    )
    root = work / "data" / "recordings"
    for index, path in enumerate(sorted(staging.iterdir())):
        start = t0 + index * SEGMENT
        folder = hour_dir(root, "cam-bench", start)
        folder.mkdir(parents=True, exist_ok=True)
        path.rename(folder / time.strftime("%Y%m%dT%H%M%SZ.mp4", time.gmtime(start)))
    return root


def raw_concat(root: Path, segments: list, start: float, end: float, out: Path) -> float:
    lines = ["ffconcat version 1.0"]
    for i, seg in enumerate(segments):
        lines.append(f"file '{root / seg.path}'")
        if i == 0 and start > seg.start:
            lines.append(f"inpoint {start - seg.start:.3f}")
        if i == len(segments) - 1 and end < seg.end:
            lines.append(f"outpoint {end - seg.start:.3f}")
    listing = out.with_suffix(".ffconcat")
    listing.write_text("\n".join(lines) + "\n")
    t = time.perf_counter()
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            "-y",
            str(out),
        ],
        check=True,
    )
    return time.perf_counter() - t


async def main_async(quick: bool) -> int:
    minutes = 16
    runs = 5 if quick else 9
    with tempfile.TemporaryDirectory(prefix="csuhub-bench-export-") as tmp:
        work = Path(tmp)
        t0 = (time.time() // 3600) * 3600 - 3600
        root = build_segments(work, minutes, t0)
        config = {
            "hub": {"web": {"port": 0}},
            "cameras": [
                {
                    "id": "cam-bench",
                    "driver": "simcam",
                    "enabled": False,
                    "authorization": {
                        "reference": "B",
                        "issued": "2022-01-01",
                        "expires": "2099-01-01",
                    },
                }
            ],
        }
        hub = Hub(config, source="<bench>", data_dir=work / "data", web=False)
        await hub.start()  # reconciliation indexes the segments (untimed)
        try:
            print(
                f"machine: {platform.machine()}, {os.cpu_count()} cpu, python "
                f"{platform.python_version()}; {minutes} x {SEGMENT}s segments at 2 Mbit/s, "
                f"{runs} run(s)"
            )
            # untimed warm-up of both sides: the hub's first export makes its signing
            # key and asks ffmpeg its version (once per hub), and both read the
            # segments into the page cache; a single timed run must not carry that
            warm = await hub.store.segments("cam-bench", t0, t0 + 60 * minutes)
            raw_concat(root, warm, t0, t0 + 60 * minutes, work / "warm.mp4")
            await export_evidence(
                hub,
                hub.recording,
                "cam-bench",
                t0 + 30,
                t0 + 90,
                user="bench",
                reason="warm-up",
                output=work / "warm.zip",
            )
            (work / "warm.zip").unlink()
            (work / "warm.mp4").unlink()
            worst = 0.0
            for label, start, end in (
                ("60 s", t0 + 30, t0 + 90),
                ("15 min", t0 + 30, t0 + 30 + 900),
            ):
                segments = await hub.store.segments("cam-bench", start, end)
                ours, raw = [], []
                for run in range(runs):
                    os.sync()  # neither side pays for the other's write-back
                    raw.append(raw_concat(root, segments, start, end, work / f"raw{run}.mp4"))
                    os.sync()
                    t = time.perf_counter()
                    await export_evidence(
                        hub,
                        hub.recording,
                        "cam-bench",
                        start,
                        end,
                        user="bench",
                        reason="benchmark",
                        output=work / f"pkg{run}.zip",
                    )
                    ours.append(time.perf_counter() - t)
                    (work / f"pkg{run}.zip").unlink()
                ratio = statistics.median(ours) / statistics.median(raw)
                worst = max(worst, ratio)
                print(
                    f"{label:>6}: export {statistics.median(ours):.3f}s, raw concat "
                    f"{statistics.median(raw):.3f}s, ratio {ratio:.3f} "
                    f"({len(segments)} segments)"
                )
        finally:
            await hub.stop()
    ok = worst <= 1.15
    print(
        json.dumps(
            {
                "bench": "export",
                "value": round(worst, 3),
                "baseline": 1.0,
                "ratio": round(worst, 3),
                "target": 1.15,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="median of 5 runs per range, not 9")
    return asyncio.run(main_async(parser.parse_args().quick))


if __name__ == "__main__":
    sys.exit(main())
