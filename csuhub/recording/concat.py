"""Joining segments for a time range: the concat list and the ffmpeg command.

Shared by playback (remux on the fly) and evidence export, so both cut the
same way: ffmpeg's concat demuxer, stream copy, ``inpoint`` on the first
segment and ``outpoint`` on the last (the start snaps to the keyframe at or
before ``from``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csuhub.recording.layout import OutsideRoot, resolve_segment

__all__ = ["FRAGMENTED_MOVFLAGS", "OutsideRoot", "concat_args", "concat_list"]

#: fragmented MP4: written front to back, so it can go to a pipe or be followed
FRAGMENTED_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def concat_list(root: Path, segments: list[Any], start: float, end: float) -> str:
    """An ffconcat script for ``segments`` trimmed to [start, end); paths checked."""
    lines = ["ffconcat version 1.0"]
    for index, seg in enumerate(segments):
        try:
            path = resolve_segment(root, seg.path)
        except OutsideRoot:
            raise OutsideRoot(f"segment {seg.id} points outside the storage root") from None
        lines.append("file '" + str(path).replace("'", "'\\''") + "'")
        if index == 0 and start > seg.start:
            lines.append(f"inpoint {start - seg.start:.3f}")
        if index == len(segments) - 1 and end < seg.end:
            lines.append(f"outpoint {end - seg.start:.3f}")
    return "\n".join(lines) + "\n"


def concat_args(ffmpeg: str, listing: Path, output: str, *extra: str) -> list[str]:
    """The stream-copy join of a concat script into fragmented MP4 at ``output``."""
    return [
        ffmpeg,
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
        "-f",
        "mp4",
        "-movflags",
        FRAGMENTED_MOVFLAGS,
        *extra,
        output,
    ]
