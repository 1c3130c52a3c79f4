"""Simulated cameras: the demo's and the tests' stand-in for a street camera.

A simulated camera is a real H.264 stream made by ffmpeg from a lavfi test
pattern, encoded once into a short clip under the hub's data directory and
then read in a loop in real time (``-stream_loop -1 -re``) by whatever
consumes ``stream()``. ``snapshot()`` answers with a JPEG frame of that clip, so
the demo's cameras take the same snapshot path (API, audit) as a real camera's.
Discovery sends no packet: the "network" is a counter.

This plugin registers through the ``csuhub`` entry point like any other and
uses only the public hooks and protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ffmpeg
import voluptuous as vol

from csuhub.api import (
    CameraDriverSpec,
    DiscoveredCamera,
    DiscoverySourceSpec,
    StreamSource,
    hookimpl,
)

_LOGGER = logging.getLogger(__name__)

PATTERNS = ("testsrc2", "smptebars", "rgbtestsrc", "mandelbrot", "testsrc", "yuvtestsrc")

DRIVER_SCHEMA = vol.Schema(
    {
        vol.Optional("pattern", default="testsrc2"): vol.In(PATTERNS),
        vol.Optional("width", default=640): vol.All(int, vol.Range(min=64, max=3840)),
        vol.Optional("height", default=360): vol.All(int, vol.Range(min=64, max=2160)),
        vol.Optional("fps", default=10): vol.All(int, vol.Range(min=1, max=60)),
        vol.Optional("clip_seconds", default=10): vol.All(int, vol.Range(min=2, max=600)),
        vol.Optional("fail", default=False): bool,
        # a constant bitrate (e.g. "4M") for benchmarks; default: the encoder's choice
        vol.Optional("bitrate"): vol.All(str, vol.Match(r"^\d{1,5}[kKM]$")),
    }
)

# A snapshot is one decoded frame of a local clip: a second is generous, the API
# itself gives up after 15 s.
SNAPSHOT_TIMEOUT = 10.0

SOURCE_SCHEMA = vol.Schema(
    {vol.Optional("count", default=2): vol.All(int, vol.Range(min=0, max=1000))}
)


class SimcamError(Exception):
    pass


class SimulatedCamera:
    """A CameraDriver whose stream is an ffmpeg-made H.264 clip played in a loop."""

    def __init__(self, hub: Any, camera_id: str, options: dict[str, Any]) -> None:
        self.hub = hub
        self.camera_id = camera_id
        self.options = options
        digest = hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()[:12]
        self.clip = Path(hub.data_dir) / "simcam" / f"{camera_id}-{digest}.mp4"

    def encode_args(self, output: Path) -> list[str]:
        """The ffmpeg command, as a list; no shell is ever involved."""
        o = self.options
        source = ffmpeg.input(
            f"{o['pattern']}=size={o['width']}x{o['height']}:rate={o['fps']}",
            f="lavfi",
            t=o["clip_seconds"],
        )
        rate: dict[str, str] = {}
        if o.get("bitrate"):
            rate = {
                "b:v": o["bitrate"],
                "maxrate": o["bitrate"],
                "bufsize": o["bitrate"],
                "x264-params": "nal-hrd=cbr:force-cfr=1",
            }
        stream = source.output(
            str(output),
            vcodec="libx264",
            preset="ultrafast",
            tune="zerolatency",
            pix_fmt="yuv420p",
            g=o["fps"] * 2,
            f="mp4",
            **rate,
        )
        args = stream.global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        return [_ffmpeg_binary(), *args.overwrite_output().get_args()]

    async def connect(self) -> None:
        if self.options["fail"]:
            raise SimcamError("simulated failure (options.fail is true)")
        if self.clip.exists() and self.clip.stat().st_size > 0:
            return
        self.clip.parent.mkdir(parents=True, exist_ok=True)
        partial = self.clip.with_suffix(".partial.mp4")
        proc = await self.hub.processes.spawn(
            self.encode_args(partial),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await proc.communicate()
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SimcamError(f"ffmpeg exited with {proc.returncode}: {tail[0]}")
        os.replace(partial, self.clip)  # atomic: a clip is either whole or absent
        _LOGGER.info("simcam %s: clip ready (%s)", self.camera_id, self.clip.name)

    def snapshot_position(self, now: float) -> float:
        """Where in the clip a snapshot taken at ``now`` is cut.

        Derived from the clock so that successive snapshots move as a live picture
        does; it stops a second short of the end, where a seek could find no frame.
        """
        span = max(1.0, self.options["clip_seconds"] - 1.0)
        return now % span

    def snapshot_args(self, position: float) -> list[str]:
        """ffmpeg decoding one frame at ``position`` to a JPEG on stdout, as a list."""
        stream = ffmpeg.input(str(self.clip), ss=f"{position:.3f}").output(
            "pipe:1", vframes=1, f="image2", vcodec="mjpeg"
        )
        args = stream.global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        return [_ffmpeg_binary(), *args.get_args()]

    async def snapshot(self, profile: str = "main") -> bytes:
        """A JPEG of the frame the looping clip shows now (the optional driver method the
        snapshot endpoint calls)."""
        if self.options["fail"]:
            raise SimcamError("simulated failure (options.fail is true)")
        if not await self.check_health():
            raise SimcamError("the simulated clip is not encoded yet")
        proc = await self.hub.processes.spawn(
            self.snapshot_args(self.snapshot_position(time.time())),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            image, stderr = await asyncio.wait_for(proc.communicate(), SNAPSHOT_TIMEOUT)
        finally:
            if proc.returncode is None:  # timed out or cancelled: never leave it running
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SimcamError(f"snapshot: ffmpeg exited with {proc.returncode}: {tail[0]}")
        if not (image.startswith(b"\xff\xd8") and image.endswith(b"\xff\xd9")):
            raise SimcamError("snapshot: ffmpeg did not produce a JPEG")
        return image

    async def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "manufacturer": "csuhub",
            "model": "simcam",
            "firmware": "1",
            "serial": self.camera_id,
            "profiles": [
                {
                    "name": "main",
                    "codec": "H264",
                    "width": o["width"],
                    "height": o["height"],
                    "fps": o["fps"],
                }
            ],
        }

    async def stream(self, profile: str = "main") -> StreamSource:
        o = self.options
        return StreamSource(
            url=str(self.clip),
            input_options={"stream_loop": "-1", "re": ""},
            codec="h264",
            width=o["width"],
            height=o["height"],
            fps=float(o["fps"]),
        )

    async def check_health(self) -> bool:
        return self.clip.exists() and self.clip.stat().st_size > 0

    async def close(self) -> None:
        return None


class SimulatedDiscovery:
    """A DiscoverySource that 'finds' ``count`` simulated cameras, sending nothing."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.count = options["count"]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def scan(self, timeout: float) -> AsyncIterator[DiscoveredCamera]:
        for index in range(1, self.count + 1):
            await asyncio.sleep(0)  # results stream one by one, as real answers do
            yield DiscoveredCamera(
                ref=f"urn:csuhub:simcam:{index}",
                address="127.0.0.1",
                source="simcam",
                name=f"Simulated camera {index}",
                driver="simcam",
                info={"manufacturer": "csuhub", "model": "simcam"},
            )


def _ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise SimcamError("ffmpeg is not installed (apt-get install ffmpeg)")
    return found


@hookimpl
def register_camera_drivers(hub: Any) -> list[CameraDriverSpec]:
    return [
        CameraDriverSpec(
            name="simcam",
            factory=SimulatedCamera,
            config_schema=DRIVER_SCHEMA,
            description="Simulated camera: synthetic H.264 made with ffmpeg",
        )
    ]


@hookimpl
def register_discovery_sources(hub: Any) -> list[DiscoverySourceSpec]:
    return [
        DiscoverySourceSpec(
            name="simcam",
            factory=SimulatedDiscovery,
            config_schema=SOURCE_SCHEMA,
            description="Reports simulated cameras; sends no network traffic",
        )
    ]


@hookimpl
def driver_for_discovery(hub: Any, camera: DiscoveredCamera) -> str | None:
    return "simcam" if camera.ref.startswith("urn:csuhub:simcam:") else None
