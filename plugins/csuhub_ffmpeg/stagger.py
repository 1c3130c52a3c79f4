"""Where in the segment period each camera cuts: staggered segment boundaries.

ffmpeg's segment muxer cuts every ``segment_time`` from each stream's start,
so cameras started together (every camera at the hub's start) close their
segments at the same instant, every period, for as long as they run. Each
closed file is hashed and indexed: 50 cameras at 4 Mbit/s and 60 s segments
were 1.5 GB read and 1.2 CPU-s of SHA-256 at once on two cores, the last
segment indexed after all the others (B2 p99 212 ms). Cutting each camera at
its own phase of the wall-clock period (``segment_atclocktime`` and
``segment_clocktime_offset``) spreads that work over the period; a camera
keeps its phase across ffmpeg restarts, since the phase is on the clock and
not on the stream.
"""

from __future__ import annotations

import math

from csuhub.api import StreamSource

#: 1/φ: the k-th camera's phase is frac(k/φ), the most even spread that never moves the
#: phases already given (three-gap theorem: for any number of cameras, the widest gap
#: is at most φ² = 2.6 times the narrowest)
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class Phases:
    """Each camera's phase (0 <= phase < 1), given when it is first asked for and
    kept (a camera back from offline cuts where it did before).

    Spread in the order cameras first start recording (at a hub's start, the
    order they come online): any set of cameras started together is spread
    over the period, however many there are.
    """

    def __init__(self) -> None:
        self._given: dict[str, float] = {}

    def __call__(self, camera_id: str) -> float:
        phase = self._given.get(camera_id)
        if phase is None:
            phase = self._given[camera_id] = (len(self._given) * GOLDEN) % 1.0
        return phase


def paced(source: StreamSource) -> bool:
    """Whether media reaches ffmpeg at the pace it was shot (a camera, a clip read
    with ``-re``): only then can segments be cut on the wall clock. A local file
    read as fast as ffmpeg can would put minutes of media in one segment; it is
    cut on the media clock, every ``segment_time``."""
    if "re" in source.input_options or "readrate" in source.input_options:
        return True
    scheme, sep, _ = source.url.partition("://")
    return bool(sep) and scheme.lower() != "file"


def clock_options(source: StreamSource, phase: float, segment_seconds: float) -> dict[str, str]:
    """The segment muxer's options that cut at ``phase`` of each period of the
    day (ffmpeg reads local time: the recorder runs it with TZ=UTC), or none."""
    if not paced(source):
        return {}
    return {
        "segment_atclocktime": "1",
        "segment_clocktime_offset": f"{phase * segment_seconds:.3f}",
    }
