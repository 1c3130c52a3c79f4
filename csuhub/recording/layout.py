"""The storage layout: ``<storage>/<camera>/YYYY/MM/DD/HH/YYYYmmddTHHMMSSZ.mp4`` (UTC).

The file name is the segment's wall-clock start; the hour folders keep any
folder to at most a few hundred files and make "what is older than X" a
cheap question for the index, never a walk of the tree.
"""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

SEGMENT_NAME = re.compile(r"^(\d{8}T\d{6}Z)\.mp4$")
NAME_FORMAT = "%Y%m%dT%H%M%SZ"
HOUR_FORMAT = "%Y/%m/%d/%H"
#: the strftime pattern ffmpeg's segment muxer writes to, under a camera's folder
FFMPEG_PATTERN = f"{HOUR_FORMAT}/{NAME_FORMAT}.mp4"


def segment_start(name: str) -> float | None:
    """The UTC start encoded in a segment's file name, or None if it is not one."""
    match = SEGMENT_NAME.match(name)
    if not match:
        return None
    return float(calendar.timegm(time.strptime(match.group(1), NAME_FORMAT)))


def hour_dir(root: Path, camera_id: str, when: float) -> Path:
    return root / camera_id / time.strftime(HOUR_FORMAT, time.gmtime(when))
