"""Continuity proof: which seconds of a range exist, and why the others do not."""

from __future__ import annotations

from typing import Any

from csuhub.store import Gap, Segment, Store

#: Holes shorter than this between segments are keyframe rounding, not gaps.
TOLERANCE = 1.5


def holes(segments: list[Segment], start: float, end: float) -> list[tuple[float, float]]:
    """The parts of [start, end) no usable segment covers."""
    out: list[tuple[float, float]] = []
    cursor = start
    for seg in sorted((s for s in segments if s.status == "ok"), key=lambda s: s.start):
        if seg.end <= cursor:
            continue
        if seg.start - cursor > TOLERANCE:
            out.append((cursor, min(seg.start, end)))
        cursor = max(cursor, seg.end)
        if cursor >= end:
            break
    if end - cursor > TOLERANCE:
        out.append((cursor, end))
    return out


def explain(hole: tuple[float, float], gaps: list[Gap], segments: list[Segment]) -> str:
    for gap in gaps:
        if gap.start < hole[1] and gap.end > hole[0]:
            return gap.reason
    for seg in segments:
        if seg.status != "ok" and seg.start < hole[1] and seg.end >= hole[0]:
            return f"segment {seg.status}"
    return "not recorded"


async def continuity(store: Store, camera_id: str, start: float, end: float) -> dict[str, Any]:
    segments = await store.segments(camera_id, start, end)
    gaps = await store.gaps(camera_id, start, end)
    missing = holes(segments, start, end)
    missing_s = sum(b - a for a, b in missing)
    total = max(end - start, 1e-9)
    return {
        "camera_id": camera_id,
        "from": start,
        "to": end,
        "recorded_s": round(total - missing_s, 3),
        "percent": round(100.0 * (total - missing_s) / total, 3),
        "segments": len([s for s in segments if s.status == "ok"]),
        "gaps": [
            {
                "start": a,
                "end": b,
                "duration": round(b - a, 3),
                "reason": explain((a, b), gaps, segments),
            }
            for a, b in missing
        ],
    }
