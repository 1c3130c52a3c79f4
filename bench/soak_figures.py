"""B8 soak: the pure arithmetic of its verdicts and of the sizing table.

Kept apart from ``bench/soak.py`` (which starts a hub, cameras and clients) so
that ``tests/test_bench_soak.py`` can check the judgement itself in
milliseconds: a soak that runs 30 minutes must not pass on a rounding slip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: the issue's targets
LAG_P99_TARGET_MS = 20.0
RSS_GROWTH_TARGET = 0.05
DAY_S = 86400


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the value a reader can find in the
    samples, never an interpolation between two of them. NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def growth(before: float, after: float) -> float:
    """Relative growth from ``before`` to ``after`` (0.05 is 5 %)."""
    if before <= 0:
        raise ValueError("growth needs a positive starting value")
    return (after - before) / before


def flat(before: int, after: int, slack: int = 4, share: float = 0.10) -> bool:
    """Whether a count of file descriptors or threads stayed flat: at most
    ``slack`` more, or ``share`` more for large counts. A live viewer's
    reconnection or an export in flight holds a few for a moment; a leak grows
    with time and passes both bounds over a long run."""
    return after - before <= max(slack, int(before * share))


@dataclass(frozen=True, slots=True)
class Gap:
    camera_id: str
    start: float
    end: float
    reason: str


def unexplained(
    gaps: Sequence[Gap], faults: Sequence[tuple[str, float, float]], after: float
) -> list[Gap]:
    """The gaps no injected fault explains. A fault ``(camera, down, up)`` explains
    a gap of that camera that overlaps ``[down, up + after]``: the recorder
    notices the source gone within its read timeout and comes back within its
    back-off once the source is up again (``after`` bounds that)."""
    left = []
    for gap in gaps:
        if not any(
            gap.camera_id == camera and gap.start <= up + after and gap.end >= down
            for camera, down, up in faults
        ):
            left.append(gap)
    return left


def storage_per_day(bitrate_bps: float, overhead: float = 0.0) -> float:
    """Bytes one camera writes in a day at ``bitrate_bps`` (the video payload),
    plus the container's share ``overhead`` (0.02 is 2 % more)."""
    return bitrate_bps * DAY_S / 8 * (1 + overhead)


def cameras_per_core(cpu_per_camera: float, utilisation: float = 1.0) -> float:
    """How many cameras one core records at ``cpu_per_camera`` (core-seconds per
    second of one camera), using ``utilisation`` of the core."""
    if cpu_per_camera <= 0:
        return math.inf
    return utilisation / cpu_per_camera


def worst(lags_ms: Sequence[float], period_s: float) -> tuple[float, float]:
    """(seconds into the probe, lag in ms) of the worst lag: each sample took
    the period plus its lag, so their running sum is when it was taken."""
    at, found = 0.0, (0.0, -math.inf)
    for lag in lags_ms:
        at += period_s + lag / 1000
        if lag > found[1]:
            found = (at, lag)
    return found
