"""The ffmpeg side of masking: one filter graph, and the commands that use it.

The graph paints the masked pixels one uniform colour::

    [0:v] setpts=PTS-STARTPTS, scale=W:H             -> the picture
    color=c=COLOUR:s=WxH:d=1 + [1:v] (the mask PGM)
          -> alphamerge (the mask's grey becomes alpha) -> the paint
    picture + paint -> overlay (eof_action=repeat)    -> [masked]

Why each piece: the paint is a single still frame repeated by ``overlay``
over every picture, so the mask costs no decoding per frame. The picture's
timestamps start at zero (``setpts``) because ``overlay`` passes through,
unpainted, any picture older than its first paint frame: a stream starting at
a negative or late timestamp would otherwise leak its first frames. ``scale``
pins the picture to the size the mask was drawn for, so a stream that changes
resolution midway is resized under the mask, never shown beside it.

Mid-grey (not black) is the colour so that a masked area cannot be mistaken
for a dark scene. Every command is a list of arguments, never a shell string.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from csuhub.recording.concat import FRAGMENTED_MOVFLAGS

#: the paint: mid-grey, visibly a mask, never confused with night
MASK_COLOUR = "0x808080"

#: re-encoding a masked export: x264 at CRF 18 (visually lossless for CCTV
#: footage; about 2-3x the camera's bitrate), preset veryfast to keep an export
#: of an hour within minutes on the hub's CPU, 4:2:0 for every player
EXPORT_ENCODER: tuple[str, ...] = (
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "18",
    "-pix_fmt",
    "yuv420p",
)

#: a live sub-stream: latency first, quality of a sub-stream
LIVE_ENCODER: tuple[str, ...] = (
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-tune",
    "zerolatency",
    "-crf",
    "23",
    "-pix_fmt",
    "yuv420p",
    "-g",
    "50",
)

OUTPUT_LABEL = "masked"

_QUIET = ("-hide_banner", "-nostdin", "-loglevel", "error")


def filter_graph(
    width: int,
    height: int,
    *,
    colour: str = MASK_COLOUR,
    video: str = "0:v",
    mask: str = "1:v",
    out: str = OUTPUT_LABEL,
) -> str:
    """The ``-filter_complex`` graph: ``video`` with ``mask``'s white painted
    ``colour``, as ``[out]``. Labels and colour are the caller's constants."""
    size = f"{int(width)}x{int(height)}"
    return (
        f"[{video}]setpts=PTS-STARTPTS,scale={int(width)}:{int(height)}[picture];"
        f"color=c={colour}:s={size}:d=1[paint];"
        f"[paint][{mask}]alphamerge[stencil];"
        f"[picture][stencil]overlay=eof_action=repeat:format=auto[{out}]"
    )


def masked_args(
    ffmpeg: str,
    inputs: Sequence[str],
    mask: Path,
    width: int,
    height: int,
    outputs: Sequence[str],
    *,
    encoder: Sequence[str] = EXPORT_ENCODER,
    audio: bool = True,
) -> list[str]:
    """``inputs`` (the video as input 0, with its own options) masked by the PGM
    ``mask``, re-encoded with ``encoder``; audio, if any, is copied untouched."""
    return [
        ffmpeg,
        *_QUIET,
        *inputs,
        "-i",
        str(mask),
        "-filter_complex",
        filter_graph(width, height),
        "-map",
        f"[{OUTPUT_LABEL}]",
        *(("-map", "0:a?", "-c:a", "copy") if audio else ("-an",)),
        *encoder,
        *outputs,
    ]


def live_transcode_args(
    ffmpeg: str,
    source: Sequence[str],
    mask: Path,
    width: int,
    height: int,
    outputs: Sequence[str],
) -> list[str]:
    """A live view of a camera the driver cannot mask itself (issue 14): its
    sub-stream (``source``: input options and ``-i <url>``) transcoded with the
    mask painted in, to ``outputs`` (muxer options and destination). No audio:
    live view is pictures."""
    return masked_args(
        ffmpeg, source, mask, width, height, outputs, encoder=LIVE_ENCODER, audio=False
    )


def frame_args(
    ffmpeg: str,
    segment: Path,
    offset: float,
    mask: Path | None = None,
    width: int = 0,
    height: int = 0,
) -> list[str]:
    """One JPEG of ``segment`` at ``offset`` seconds to stdout, masked when
    ``mask`` is given (drawn at ``width`` x ``height``, the segment's size)."""
    inputs = ["-ss", f"{max(0.0, offset):.3f}", "-i", str(segment)]
    outputs = ["-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "pipe:1"]
    if mask is None:
        return [ffmpeg, *_QUIET, *inputs, *outputs]
    return masked_args(ffmpeg, inputs, mask, width, height, outputs, encoder=(), audio=False)


def jpeg_args(ffmpeg: str, jpeg: Path, mask: Path, width: int, height: int) -> list[str]:
    """A still (a snapshot) masked, as a JPEG on stdout."""
    outputs = ["-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-q:v", "3", "pipe:1"]
    return masked_args(
        ffmpeg, ["-i", str(jpeg)], mask, width, height, outputs, encoder=(), audio=False
    )


def export_args(
    ffmpeg: str, listing: Path, mask: Path, width: int, height: int, output: str, *extra: str
) -> list[str]:
    """The masked counterpart of ``csuhub.recording.concat.concat_args``: the
    concat script re-encoded through the mask into fragmented MP4."""
    inputs = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    outputs = ["-f", "mp4", "-movflags", FRAGMENTED_MOVFLAGS, *extra, output]
    return masked_args(ffmpeg, inputs, mask, width, height, outputs)
