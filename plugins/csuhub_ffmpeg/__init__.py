"""Recording backend: one ffmpeg per camera, stream copy into segments.

Why this shape:

* ``-c copy`` only: no decoding, no encoding (about 1.3 % of a core per
  1080p stream here).
* Segments are fragmented MP4 (``empty_moov+default_base_moof``, half-second
  fragments, ``flush_packets=1``): a ``kill -9`` keeps everything up to the
  last fragment, where a plain MP4 would lose the whole segment.
* ffmpeg writes numbered files into the camera's staging folder
  (``<storage>/<camera>/.incoming/<run id>-NNNNNN.mp4``): names no run
  reuses, so ffmpeg (which opens its files with O_TRUNC) can never overwrite
  a segment. ``-strftime`` names were to the second: a burst of segments
  (start-up, catch-up after a stall) wrote several into one name. Finished
  segments are learnt from ``-segment_list pipe:1`` (**no process per
  segment**), and handed to the sink still staged: the hub places it
  (:func:`csuhub.api.place`) under ``YYYY/MM/DD/HH/`` (UTC) with the name of
  its media-clock start, ``-2``, ``-3``... when that second is taken, in the
  thread that hashes it (one thread hand-off per segment, not two). The list
  is read by a protocol on a pipe of our own (``segment_list.py``), not a
  ``StreamReader`` and a task: two loop iterations per segment, not five.
* Segment boundaries are staggered (``stagger.py``): each camera cuts at its
  own phase of the wall-clock period, so cameras started together do not
  close, hash and index their segments in one burst. The first segment after
  a (re)start ends at the camera's next phase, so it is shorter; its
  duration, like every other's, comes from the media.
* Index times come from the media's own timestamps: the list gives each
  segment's first and last presentation time, and one wall-clock anchor per
  ffmpeg run (:class:`MediaClock`, in ``clock.py``) places that timeline on
  the calendar, so consecutive segments tile exactly.
* A watchdog restarts ffmpeg when no segment closes within twice the segment
  time; restarts back off exponentially (capped; authentication failures to
  minutes: ``csuhub.api.Backoff`` and ``SteppedBackoff``); stderr is read
  continuously and turned into states an operator understands
  (``diagnose.py``), and an ffmpeg killed by a signal says so.
* Arguments are built by ffmpeg-python as a list; the stream URL is one
  argument after ``-i`` and never starts with ``-``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ffmpeg
import voluptuous as vol

from csuhub.api import (
    Backoff,
    RecordingBackendSpec,
    SegmentSink,
    SteppedBackoff,
    StreamSource,
    cv,
    hookimpl,
    new_run_id,
    place_unlisted,
    staged_key,
    staging_dir,
)
from csuhub_ffmpeg.clock import MediaClock
from csuhub_ffmpeg.diagnose import classify
from csuhub_ffmpeg.segment_list import SegmentListReader
from csuhub_ffmpeg.stagger import Phases, clock_options

__all__ = [
    "OPTIONS",
    "FfmpegBackend",
    "FfmpegRecorder",
    "MediaClock",
    "classify",
    "parse_list_line",
]

_LOGGER = logging.getLogger(__name__)

# half-second fragments, flushed: at most ~0.5 s is lost when ffmpeg is killed mid-segment
# (fragments only at keyframes would make a fragment as long as the GOP)
FRAGMENTED = (
    "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1"
)

#: a run of ffmpeg this long (seconds) was a success: the next failure waits 1 s again
STABLE_AFTER = 120.0

OPTIONS = vol.Schema(
    {
        vol.Optional("rtsp_timeout", default=5.0): cv.duration,
        vol.Optional("max_backoff", default=60.0): cv.duration,
        # the first segment may wait for a keyframe and stream analysis
        vol.Optional("startup_grace", default=15.0): cv.duration,
        # first wait after the camera refuses the credentials; then x2, x5, x10 (capped)
        vol.Optional("unauthorized_backoff", default=60.0): cv.duration,
    }
)


def parse_list_line(line: bytes) -> tuple[str, float, float] | None:
    """One ``-segment_list_type csv`` line: (file name, start, end) in media seconds.

    ffmpeg's output, but still checked: a name that is not a staged file's
    name, or times that are not finite and ordered, give None.
    """
    fields = line.decode(errors="replace").strip().split(",")
    if len(fields) != 3 or staged_key(fields[0]) is None:
        return None
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return None
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        return None
    return fields[0], start, end


@dataclass(slots=True)
class _RunProgress:
    """One ffmpeg run's progress, shared by its list reader and its watchdog."""

    #: monotonic time of the last segment listed (or of the start)
    last_segment: float
    #: no segment indexed yet
    first: bool = True
    #: the watchdog stopped this run for want of segments
    stalled: bool = False
    #: the watchdog's deadline (moved at each segment listed)
    timer: asyncio.TimerHandle | None = None


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
        #: where in each segment period (wall clock, 0 <= phase < 1) this camera cuts
        self.phase = backend.phases(camera_id)
        self.stderr_tail: deque[str] = deque(maxlen=50)
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        #: staged names the list reader is placing (the recovery leaves them alone)
        self._listed: set[str] = set()
        #: waits after authentication failures, as multiples of ``unauthorized_backoff``
        #: (1, 2, 5, 10 min by default): retrying every few seconds locks the account
        #: on many cameras
        self.unauthorized = SteppedBackoff(backend.options["unauthorized_backoff"])
        #: this run's media clock (made at each start); this run's last listed segment
        #: number; where the last segment this recorder indexed ends (bounds the next
        #: one, any run)
        self.clock: MediaClock | None = None
        self.run_id = new_run_id()
        self._last_number: int | None = None
        self._last_end: float | None = None
        #: the watchdog's shutdowns of stalled runs
        self._stopping: set[asyncio.Task[None]] = set()

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
        # numbered per run, never -strftime: ffmpeg truncates an existing name
        pattern = f"{self.staging}/{self.run_id}-%06d.mp4"
        output: dict[str, Any] = {
            "c": "copy",
            "f": "segment",
            "segment_time": f"{self.segment_seconds:g}",
            "segment_format": "mp4",
            "segment_format_options": FRAGMENTED,
            "reset_timestamps": 1,
            "segment_list": "pipe:1",
            "segment_list_type": "csv",
            "map": "0:v:0" if not self.audio else "0",
        }
        output.update(clock_options(self.source, self.phase, self.segment_seconds))
        if not self.audio:
            output["an"] = None
        stream = ffmpeg.input(url, **input_options).output(pattern, **output)
        stream = stream.global_args("-hide_banner", "-nostdin", "-loglevel", "warning")
        return [self.backend.binary, *stream.get_args()]

    @property
    def staging(self) -> Path:
        return staging_dir(self.sink.segment_dir(self.camera_id, None))

    # -- supervision ---------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(1.0, self.backend.options["max_backoff"])
        while True:
            started = time.monotonic()
            state, reason = await self._run_once()
            self.restarts += 1
            if time.monotonic() - started > STABLE_AFTER:
                backoff.reset()
            wait = backoff.next()
            if state == "unauthorized":  # slow retries: do not hammer (or lock) an account
                wait = max(wait, self.unauthorized.next())
            else:
                self.unauthorized.reset()
            # "ffmpeg killed (signal 9)" says it all; others say what ffmpeg saw
            said = reason if reason.startswith("ffmpeg") else f"ffmpeg restart: {reason}"
            self.sink.interrupted(self.camera_id, said)
            next_try = time.strftime("%H:%M:%S", time.localtime(time.time() + wait))
            self.sink.recorder_state(
                self.camera_id, "retrying", f"{reason}; next try at {next_try} (in {wait:.0f}s)"
            )
            await asyncio.sleep(wait)

    async def _run_once(self) -> tuple[str, str]:
        await asyncio.to_thread(self.staging.mkdir, parents=True, exist_ok=True)
        wall_start = time.time()
        # the previous run's last segment bounds this one's first
        self.clock = MediaClock(wall_start, self._last_end)
        self.run_id = new_run_id(wall_start)
        self._last_number = None
        self.sink.recorder_state(self.camera_id, "starting", "")
        run = _RunProgress(last_segment=time.monotonic())
        # the list on a pipe of our own, read by a protocol (segment_list.py: no
        # StreamReader, no task per line)
        list_out, list_in = os.pipe()
        try:
            proc = await self.backend.hub.processes.spawn(
                self.args(),
                stdout=list_in,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "TZ": "UTC"},
            )
        except BaseException:
            os.close(list_out)
            raise
        finally:
            os.close(list_in)  # ffmpeg has its copy: the pipe ends when ffmpeg does
        self.proc = proc
        self.stderr_tail.clear()
        loop = asyncio.get_running_loop()
        try:
            transport, listing = await loop.connect_read_pipe(
                lambda: SegmentListReader(
                    partial(self._list_line, proc, run, os.fspath(self.staging)),
                    name=self.camera_id,
                ),
                os.fdopen(list_out, "rb", buffering=0),
            )
        except BaseException:
            await self._shutdown(proc)
            raise
        try:
            errors = asyncio.create_task(self._read_stderr(proc))
            self._arm(proc, run, grace=True)
            try:
                await proc.wait()
                await asyncio.wait_for(asyncio.gather(listing.done, errors), 10)
            finally:
                if run.timer is not None:
                    run.timer.cancel()
        except asyncio.CancelledError:
            await self._shutdown(proc)
            with contextlib.suppress(Exception):
                # index the segment ffmpeg closed on exit (shielded: a timeout must
                # not cancel the reader's future, stop() settles it)
                await asyncio.wait_for(asyncio.shield(listing.done), 10)
            listing.stop()
            transport.close()
            await self._recover_unlisted()
            raise
        finally:
            # a run that ended any other way (a timeout, an error) reads no more either;
            # a line read while it wound down may have set the timer again
            listing.stop()
            transport.close()
            if run.timer is not None:
                run.timer.cancel()
        if self._stopping:  # a stall's shutdown: ffmpeg has exited, it ends at once
            await asyncio.gather(*self._stopping, return_exceptions=True)
        await self._recover_unlisted()
        if run.stalled:
            return "stalled", f"no segment closed in {2 * self.segment_seconds:g}s (stalled)"
        return classify(list(self.stderr_tail), proc.returncode)

    def _list_line(
        self,
        proc: asyncio.subprocess.Process,
        run: _RunProgress,
        staging: str,
        line: bytes,
        received: float,
        resume: Callable[[], None],
    ) -> bool:
        """One line of the segment list (:class:`SegmentListReader`'s handler): True
        once the segment is handed to the sink, which calls ``resume`` through
        :meth:`_indexed` when it has answered."""
        entry = parse_list_line(line)
        if entry is None:
            _LOGGER.warning("camera %s: unexpected segment list line %r", self.camera_id, line)
            return False
        name, media_start, media_end = entry
        key = staged_key(name)
        if (
            key is None
            or key[0] != self.run_id
            or (self._last_number is not None and key[1] <= self._last_number)
        ):
            # not this run's file, or listed again: placing it could index a file
            # under another segment's times
            _LOGGER.warning("camera %s: unexpected segment list line %r", self.camera_id, line)
            return False
        clock = self.clock
        assert clock is not None  # _run_once made it before reading the list
        start, duration = clock.place(received, media_start, media_end)
        if clock.jumped is not None:
            self.sink.interrupted(
                self.camera_id,
                f"the camera's timestamps jumped (media clock re-anchored {clock.jumped:+.1f} s)",
            )
        self._listed.add(name)
        before = self._last_number, self._last_end
        self._last_number, self._last_end = key[1], start + duration
        run.last_segment = time.monotonic()
        self._arm(proc, run, grace=False)
        # the sink places the staged file, hashes and indexes it in one thread
        self.sink.submit_segment(
            self.camera_id,
            f"{staging}/{name}",  # a string: a Path costs more than the rest of the line
            start,
            duration,
            partial(self._indexed, run, name, before, resume),
        )
        return True

    def _indexed(
        self,
        run: _RunProgress,
        name: str,
        before: tuple[int | None, float | None],
        resume: Callable[[], None],
        error: BaseException | None,
    ) -> None:
        """The sink's answer for one listed segment (on the loop)."""
        # done either way: the name no longer needs protecting from the recovery
        self._listed.discard(name)
        if error is not None:
            # not placed: left in the staging folder, recovered when this run ends
            # or at start-up (placed but unreadable: indexed at start-up); the next
            # segment is bounded by the last one indexed, not by this one
            _LOGGER.error("camera %s: could not index %s: %s", self.camera_id, name, error)
            self._last_number, self._last_end = before
        elif run.first:
            run.first = False
            self.sink.recorder_state(self.camera_id, "recording", "")
        resume()

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

    def _arm(self, proc: asyncio.subprocess.Process, run: _RunProgress, *, grace: bool) -> None:
        """(Re)set the stall deadline: twice the segment time after the last segment
        listed, plus the start-up grace before the first (it may wait for a
        keyframe and the stream's analysis).

        One timer per run, moved at each segment: while segments come the loop
        never wakes for it. A task sleeping towards the deadline woke about once a
        segment, two loop iterations each, as much as the segment's own indexing
        (issue 11, B1)."""
        if run.timer is not None:
            run.timer.cancel()
        limit = 2 * self.segment_seconds
        if grace:
            limit += self.backend.options["startup_grace"]
        run.timer = asyncio.get_running_loop().call_later(limit, self._stalled, proc, run)

    def _stalled(self, proc: asyncio.subprocess.Process, run: _RunProgress) -> None:
        run.timer = None
        if proc.returncode is not None or run.stalled:
            return
        silent = time.monotonic() - run.last_segment
        _LOGGER.warning(
            "camera %s: no segment for %.0fs; restarting ffmpeg", self.camera_id, silent
        )
        run.stalled = True
        # say so now: a hung ffmpeg may take the SIGKILL timeout to go
        self.sink.recorder_state(
            self.camera_id,
            "retrying",
            f"stalled: no segment for {silent:.0f}s; restarting ffmpeg",
        )
        # the run sees ffmpeg exit and ends; referenced until done (the loop keeps
        # only weak references to tasks)
        task = asyncio.get_running_loop().create_task(self._shutdown(proc))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _shutdown(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM: ffmpeg closes and lists the open segment; SIGKILL after 5 s."""
        await self.backend.hub.processes.terminate(proc)

    def _unlisted(self) -> list[tuple[tuple[str, int], Path]]:
        """Staged files the list never reported, as (name key, path) (blocking: a
        thread), in the order ffmpeg wrote them: once a run is over, anything left
        there is unplaced."""
        staging = self.staging
        if not staging.is_dir():
            return []
        found = [
            (key, path)
            for path in staging.iterdir()
            if (key := staged_key(path.name)) is not None and path.name not in self._listed
        ]
        return sorted(found)

    async def _recover_unlisted(self) -> None:
        """The file ffmpeg was writing when it died is not in the list: index it anyway.

        The file right after this run's last listed one began where that one
        ended (media time, so it tiles); any other starts at its last write
        minus its media duration, never before the footage already indexed.
        Its duration and validity are read from the file itself.
        """
        for key, path in await asyncio.to_thread(self._unlisted):
            follows = (
                key[0] == self.run_id
                and self._last_number is not None
                and key[1] == self._last_number + 1
            )
            self._listed.add(path.name)
            try:
                placed = await place_unlisted(
                    path,
                    partial(self.sink.segment_dir, self.camera_id),
                    self._last_end,
                    self._last_end if follows else None,
                )
            except OSError as err:  # left there: the next start's reconciliation retries
                _LOGGER.error("camera %s: could not place %s: %s", self.camera_id, path, err)
                continue
            self._last_number = None
            if placed is None:
                continue
            final, start, self._last_end = placed
            await self.sink.segment_closed(self.camera_id, final, start, None)


class FfmpegBackend:
    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.hub = hub
        self.options = options
        binary = shutil.which("ffmpeg")
        if binary is None:
            raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
        self.binary = binary
        #: where each camera it records cuts its segments, for this backend's life
        self.phases = Phases()

    def recorder(
        self,
        camera_id: str,
        source: StreamSource,
        sink: SegmentSink,
        segment_seconds: float,
        audio: bool,
    ) -> FfmpegRecorder:
        return FfmpegRecorder(self, camera_id, source, sink, segment_seconds, audio)


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
