"""The ffmpeg commands of a live upstream: stream copy, or the masked transcode.

Why these options:

* ``-c copy`` into fragmented MP4 on stdout: no decoding, no encoding; the
  browser plays the camera's own H.264 through Media Source Extensions.
* ``frag_keyframe`` starts a fragment at every keyframe, so a viewer can
  start (or skip ahead) at a fragment boundary; ``-frag_duration`` also cuts
  fragments shorter than a GOP, because a fragment leaves ffmpeg only when it
  is complete: its length is latency. ``empty_moov`` puts the codec
  configuration in the init segment, ``default_base_moof`` makes each
  fragment self-contained (what MSE expects), and ``-flush_packets 1`` hands
  each fragment to the pipe at once instead of when ffmpeg's 32 KiB buffer
  fills.
* A camera with privacy masks in force is never copied: its picture is
  decoded, painted (``csuhub.masks.ffmpeg.live_transcode_args``: the graph
  exports and frames use) and re-encoded with x264 ``zerolatency``, with a
  keyframe forced every two seconds so a lagging viewer can catch up.
* Arguments are a list; the stream URL is one argument after ``-i`` and may
  not start with ``-``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from csuhub.masks.ffmpeg import live_transcode_args

#: +frag_keyframe: a fragment starts at each keyframe; the rest as above
MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof"
#: a masked stream's keyframe interval (seconds): how far a skipping viewer jumps
MASKED_KEYFRAMES = 2


class CommandError(ValueError):
    """The camera's stream cannot be turned into a command (a bad URL)."""


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise CommandError("ffmpeg is not installed (apt-get install ffmpeg)")
    return found


def input_args(source: Any, rtsp_timeout: float, analyze: float = 0.5) -> list[str]:
    """The driver's input options, then ``-i URL`` (``source``: a StreamSource).

    ``analyze``: seconds ffmpeg studies an RTSP stream before its first output
    (its default, 5 s, delays a cold start by about 3 s; the SDP's parameter
    sets and half a second of packets are enough to know the picture)."""
    url = str(source.url)
    if url.startswith("-") or any(ch in url for ch in "\r\n\x00"):
        raise CommandError("refusing a stream URL that could be read as an option")
    options = dict(source.input_options)
    if url.startswith(("rtsp://", "rtsps://")):
        options.setdefault("rtsp_transport", "tcp")
        # without a socket timeout ffmpeg waits for ever after a network cut
        options.setdefault("timeout", str(int(rtsp_timeout * 1_000_000)))
        options.setdefault("analyzeduration", str(int(analyze * 1_000_000)))
    args: list[str] = []
    for key, value in options.items():
        if not key.replace("_", "").isalnum():
            raise CommandError(f"refusing the input option {key!r}")
        args.append(f"-{key}")
        if value != "":
            args.append(str(value))
    return [*args, "-i", url]


def _outputs(fragment_seconds: float) -> list[str]:
    return [
        "-f",
        "mp4",
        "-movflags",
        MOVFLAGS,
        "-frag_duration",
        str(max(1, int(fragment_seconds * 1_000_000))),
        "-flush_packets",
        "1",
        "pipe:1",
    ]


def copy_args(ffmpeg: str, source: Sequence[str], fragment_seconds: float) -> list[str]:
    """The camera's first video stream, copied."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *source,
        "-map",
        "0:v:0",
        "-an",
        "-c:v",
        "copy",
        *_outputs(fragment_seconds),
    ]


def masked_args(
    ffmpeg: str,
    source: Sequence[str],
    mask: Path,
    width: int,
    height: int,
    fragment_seconds: float,
) -> list[str]:
    """The camera's picture with ``mask`` painted in, re-encoded."""
    outputs = [
        "-force_key_frames",
        f"expr:gte(t,n_forced*{MASKED_KEYFRAMES})",
        *_outputs(fragment_seconds),
    ]
    return live_transcode_args(ffmpeg, source, mask, width, height, outputs)


#: input options of ffmpeg's own (pacing, looping) that ffprobe does not take
_NOT_FOR_PROBE = frozenset({"re", "stream_loop", "readrate"})


async def probe_size(
    processes: Any, source: Any, rtsp_timeout: float, timeout: float = 15.0
) -> tuple[int, int]:
    """The stream's picture size, asked of ffprobe (for drawing the mask at
    it when the driver does not say)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise CommandError("ffprobe is not installed: the masked stream cannot be made")
    options = {k: v for k, v in source.input_options.items() if k not in _NOT_FOR_PROBE}
    probe_source = dataclasses.replace(source, input_options=options)
    args = [
        ffprobe,
        "-v",
        "error",
        *input_args(probe_source, rtsp_timeout),
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0:s=x",
    ]
    proc = await processes.spawn(
        args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        await processes.terminate(proc)
        raise
    text = out.decode("ascii", "replace").strip().splitlines()[:1]
    try:
        width, height = (int(v) for v in text[0].split("x")[:2])
    except (IndexError, ValueError):
        raise CommandError("the stream's picture size could not be read") from None
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise CommandError("the stream has an impossible picture size")
    return width, height
