"""Recording backend: one ffmpeg per camera, stream copy into segments.

Why this shape:

* ``-c copy`` only: no decoding, no encoding (about 1.3 % of a core per
  1080p stream here).
* Segments are fragmented MP4 (``empty_moov+default_base_moof``, half-second
  fragments, ``flush_packets=1``): a ``kill -9`` keeps everything up to the
  last fragment, where a plain MP4 would lose the whole segment.
* ffmpeg writes straight into ``<storage>/<camera>/YYYY/MM/DD/HH/`` (UTC) with
  ``-strftime``; the hub pre-creates the hour folders. Finished segments are
  learnt from ``-segment_list pipe:1``: **no process per segment**.
* A watchdog restarts ffmpeg when no segment closes within twice the segment
  time; restarts back off exponentially (capped); stderr is read continuously
  and turned into states an operator understands.
* Arguments are built by ffmpeg-python as a list; the stream URL is one
  argument after ``-i`` and never starts with ``-``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from collections import deque
from pathlib import Path
from typing import Any

import ffmpeg
import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.hookspecs import hookimpl
from csuhub.protocols import SegmentSink, StreamSource
from csuhub.recording.layout import FFMPEG_PATTERN, SEGMENT_NAME, segment_start
from csuhub.specs import RecordingBackendSpec

_LOGGER = logging.getLogger(__name__)

# half-second fragments, flushed: at most ~0.5 s is lost when ffmpeg is killed mid-segment
# (fragments only at keyframes would make a fragment as long as the GOP)
FRAGMENTED = (
    "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1"
)

OPTIONS = vol.Schema(
    {
        vol.Optional("rtsp_timeout", default=5.0): cv.duration,
        vol.Optional("max_backoff", default=60.0): cv.duration,
        # the first segment may wait for a keyframe and stream analysis
        vol.Optional("startup_grace", default=15.0): cv.duration,
        vol.Optional("unauthorized_backoff", default=30.0): cv.duration,
    }
)

#: stderr patterns -> (state, reason); first match wins
CLASSIFY = [
    (
        re.compile(r"401 Unauthorized"),
        "unauthorized",
        "unauthorized: the camera refused the credentials",
    ),
    (re.compile(r"403 Forbidden"), "unauthorized", "forbidden by the camera"),
    (re.compile(r"404 Not Found"), "not_found", "no such stream on the camera"),
    (re.compile(r"Connection refused"), "refused", "connection refused"),
    (re.compile(r"Connection timed out|timed out"), "timeout", "the camera stopped answering"),
    (re.compile(r"No space left on device"), "disk_full", "disk full"),
    (
        re.compile(r"No route to host|Network is unreachable"),
        "unreachable",
        "the camera is unreachable",
    ),
    (
        re.compile(r"Invalid data found|could not find codec parameters", re.I),
        "invalid",
        "the stream is not valid video",
    ),
]


def classify(lines: list[str], returncode: int | None) -> tuple[str, str]:
    for line in reversed(lines):
        for pattern, state, reason in CLASSIFY:
            if pattern.search(line):
                return state, reason
    if returncode == 0:
        return "ended", "stream ended"
    last = lines[-1][:200] if lines else "no output"
    return "crashed", f"ffmpeg exited with code {returncode}: {last}"


class FfmpegRecorder:
    def __init__(
        self,
        backend: FfmpegBackend,
        camera_id: str,
        source: StreamSource,
        sink: SegmentSink,
        segment_seconds: float,
        audio: bool,
    ) -> None:
        self.backend = backend
        self.camera_id = camera_id
        self.source = source
        self.sink = sink
        self.segment_seconds = segment_seconds
        self.audio = audio
        self.stderr_tail: deque[str] = deque(maxlen=50)
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._listed: set[str] = set()

    # -- the command --------------------------------------------------------------

    def args(self) -> list[str]:
        url = self.source.url
        if url.startswith("-") or any(ch in url for ch in "\r\n\x00"):
            raise ValueError("refusing a stream URL that could be read as an option")
        input_options: dict[str, Any] = {}
        for key, value in self.source.input_options.items():
            input_options[key] = None if value == "" else value
        if url.startswith(("rtsp://", "rtsps://")):
            input_options.setdefault(
                "timeout", str(int(self.backend.options["rtsp_timeout"] * 1_000_000))
            )
        pattern = f"{self.sink.segment_dir(self.camera_id, None)}/{FFMPEG_PATTERN}"
        output: dict[str, Any] = {
            "c": "copy",
            "f": "segment",
            "segment_time": f"{self.segment_seconds:g}",
            "segment_format": "mp4",
            "segment_format_options": FRAGMENTED,
            "reset_timestamps": 1,
            "strftime": 1,
            "segment_list": "pipe:1",
            "segment_list_type": "csv",
            "map": "0:v:0" if not self.audio else "0",
        }
        if not self.audio:
            output["an"] = None
        stream = ffmpeg.input(url, **input_options).output(pattern, **output)
        stream = stream.global_args("-hide_banner", "-nostdin", "-loglevel", "warning")
        return [self.backend.binary, *stream.get_args()]

    # -- supervision ---------------------------------------------------------------

    async def run(self) -> None:
        backoff = 1.0
        max_backoff = self.backend.options["max_backoff"]
        while True:
            started = time.monotonic()
            state, reason = await self._run_once()
            self.restarts += 1
            ran = time.monotonic() - started
            if ran > 120:
                backoff = 1.0
            wait = backoff
            if state == "unauthorized":  # slow retries: do not hammer (or lock) an account
                wait = max(wait, self.backend.options["unauthorized_backoff"])
            self.sink.interrupted(self.camera_id, f"ffmpeg restart: {reason}")
            self.sink.recorder_state(
                self.camera_id, "retrying", f"{reason}; retrying in {wait:.0f}s"
            )
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, max_backoff)

    async def _run_once(self) -> tuple[str, str]:
        await asyncio.to_thread(self._make_dirs)
        wall_start = time.time()
        self.sink.recorder_state(self.camera_id, "starting", "")
        proc = await self.backend.hub.processes.spawn(
            self.args(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "TZ": "UTC"},
        )
        self.proc = proc
        self.stderr_tail.clear()
        last_segment = [time.monotonic()]
        first = [True]
        try:
            reader = asyncio.create_task(self._read_list(proc, last_segment, first))
            errors = asyncio.create_task(self._read_stderr(proc))
            watchdog = asyncio.create_task(self._watchdog(proc, last_segment, first))
            try:
                await proc.wait()
                await asyncio.wait_for(asyncio.gather(reader, errors), 10)
            finally:
                watchdog.cancel()
        except asyncio.CancelledError:
            await self._shutdown(proc)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, 10)  # index the segment ffmpeg closed on exit
            await self._recover_unlisted(wall_start)
            raise
        stalled = getattr(proc, "_csuhub_stalled", False)
        await self._recover_unlisted(wall_start)
        if stalled:
            return "stalled", f"no segment closed in {2 * self.segment_seconds:g}s (stalled)"
        return classify(list(self.stderr_tail), proc.returncode)

    async def _read_list(
        self, proc: asyncio.subprocess.Process, last: list[float], first: list[bool]
    ) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            name = line.decode(errors="replace").strip().split(",")
            if len(name) < 3:
                continue
            start = segment_start(name[0])
            if start is None:
                _LOGGER.warning("camera %s: unexpected segment name %r", self.camera_id, name[0])
                continue
            try:
                duration = float(name[2]) - float(name[1])
            except ValueError:
                continue
            path = self.sink.segment_dir(self.camera_id, start) / name[0]
            self._listed.add(name[0])
            last[0] = time.monotonic()
            if first[0]:
                first[0] = False
                self.sink.recorder_state(self.camera_id, "recording", "")
            await self.sink.segment_closed(self.camera_id, path, start, max(duration, 0.0))

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            if text and "Non-monotonous DTS" not in text:
                self.stderr_tail.append(text[:500])
                if "No space left on device" in text:
                    self.sink.recorder_state(self.camera_id, "retrying", "disk full")

    async def _watchdog(
        self, proc: asyncio.subprocess.Process, last: list[float], first: list[bool]
    ) -> None:
        """Sleep towards the deadline, waking at most once per segment time."""
        while proc.returncode is None:
            limit = 2 * self.segment_seconds
            if first[0]:
                limit += self.backend.options["startup_grace"]
            remaining = last[0] + limit - time.monotonic()
            if remaining > 0:
                # re-evaluated at least once per segment time: the start-up grace ends
                # with the first segment, which shortens the deadline
                await asyncio.sleep(min(remaining, self.segment_seconds))
                continue
            _LOGGER.warning(
                "camera %s: no segment for %.0fs; restarting ffmpeg",
                self.camera_id,
                time.monotonic() - last[0],
            )
            proc._csuhub_stalled = True  # type: ignore[attr-defined]
            # say so now: a hung ffmpeg may take the SIGKILL timeout to go
            self.sink.recorder_state(
                self.camera_id,
                "retrying",
                f"stalled: no segment for {time.monotonic() - last[0]:.0f}s; restarting ffmpeg",
            )
            await self._shutdown(proc)
            return

    async def _shutdown(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM: ffmpeg closes and lists the open segment; SIGKILL after 5 s."""
        await self.backend.hub.processes.terminate(proc)

    def _make_dirs(self) -> None:
        now = time.time()
        for offset in (0, 3600):
            self.sink.segment_dir(self.camera_id, now + offset).mkdir(parents=True, exist_ok=True)

    async def _recover_unlisted(self, since: float) -> None:
        """The file ffmpeg was writing when it died is not in the list: index it anyway."""
        hour = 3600
        candidates = []
        for when in (since, time.time() - hour, time.time()):
            folder = self.sink.segment_dir(self.camera_id, when)
            if folder.is_dir():
                candidates.extend(
                    p
                    for p in folder.iterdir()
                    if SEGMENT_NAME.match(p.name) and p.name not in self._listed
                )
        for path in sorted(set(candidates)):
            start = segment_start(path.name)
            if start is None or start < since - 1:
                continue
            duration = await self.backend.probe_duration(path)
            self._listed.add(path.name)
            if duration is not None and duration > 0:
                await self.sink.segment_closed(self.camera_id, path, start, duration)
            else:
                await self.sink.segment_closed(self.camera_id, path, start, 0.0)


class FfmpegBackend:
    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.hub = hub
        self.options = options
        binary = shutil.which("ffmpeg")
        probe = shutil.which("ffprobe")
        if binary is None or probe is None:
            raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
        self.binary = binary
        self.ffprobe = probe

    def recorder(
        self,
        camera_id: str,
        source: StreamSource,
        sink: SegmentSink,
        segment_seconds: float,
        audio: bool,
    ) -> FfmpegRecorder:
        return FfmpegRecorder(self, camera_id, source, sink, segment_seconds, audio)

    async def probe_duration(self, path: Path) -> float | None:
        """One ffprobe, used only for files the segment list never reported."""
        proc = await self.hub.processes.spawn(
            [
                self.ffprobe,
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "default=noprint_wrappers=1:nokey=1",
                str(path),
            ],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        try:
            return float(out.decode().strip())
        except ValueError:
            return None


@hookimpl
def register_recording_backends(hub: Any) -> list[RecordingBackendSpec]:
    return [
        RecordingBackendSpec(
            name="ffmpeg",
            factory=FfmpegBackend,
            config_schema=OPTIONS,
            description="ffmpeg stream copy into fragmented-MP4 segments",
        )
    ]
