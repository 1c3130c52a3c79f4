"""The scope of a requisition: per camera, exactly which ranges exist and which
do not, and for each missing piece why (destroyed by which policy, never
recorded and for what reason, or no trace at all).

The officer is told at registration what the hold covers, so a gap is never
discovered at the handover.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from csuhub.services import HubServices

#: Two recorded segments closer than this are one continuous range.
JOIN = 1.5


def _merge(spans: list[tuple[float, float]]) -> list[list[float]]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + JOIN:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _holes(start: float, end: float, present: list[list[float]]) -> list[tuple[float, float]]:
    holes = []
    cursor = start
    for lo, hi in present:
        if lo > cursor + JOIN:
            holes.append((cursor, min(lo, end)))
        cursor = max(cursor, hi)
    if cursor < end - JOIN:
        holes.append((cursor, end))
    return holes


def _explain(
    hole: tuple[float, float], gaps: list[Any], destroyed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Split a missing range into what is known of it: destroyed (by which policy,
    when), never recorded (a gap and its reason), or not recorded (no trace)."""
    pieces: list[dict[str, Any]] = []
    lo, hi = hole
    marks: list[tuple[float, float, dict[str, Any]]] = []
    for gap in gaps:
        marks.append((gap.start, gap.end, {"why": "not_recorded", "reason": gap.reason}))
    for row in destroyed:
        marks.append(
            (
                row["footage_start"],
                row["footage_end"],
                {
                    "why": "destroyed",
                    "policy": row["policy"],
                    "destroyed_at": row["last_destroyed_at"],
                },
            )
        )
    marks.sort(key=lambda m: m[0])
    cursor = lo
    for start, end, what in marks:
        start, end = max(start, cursor), min(end, hi)
        if end <= start:
            continue
        if start > cursor:
            pieces.append({"from": cursor, "to": start, "why": "not_recorded", "reason": "unknown"})
        pieces.append({"from": start, "to": end, **what})
        cursor = end
    if cursor < hi:
        pieces.append({"from": cursor, "to": hi, "why": "not_recorded", "reason": "unknown"})
    return pieces


async def requisition_scope(
    hub: HubServices, cameras: list[str], start: float, end: float
) -> dict[str, Any]:
    """Per camera, exactly which ranges exist (and are held) and which do not, and why."""
    out: dict[str, Any] = {}
    for camera_id in cameras:
        spans = await hub.store.requisitions.coverage(camera_id, start, end)
        present = _merge([(max(s, start), min(e, end)) for s, e, ok in spans if ok])
        holes = _holes(start, end, present)
        missing: list[dict[str, Any]] = []
        if holes:
            gaps = await hub.store.gaps(camera_id, start, end)
            destroyed = await hub.store.retention.destructions(camera_id, start, end)
            for hole in holes:
                missing.extend(_explain(hole, gaps, destroyed))
        seconds = sum(hi - lo for lo, hi in present)
        out[camera_id] = {
            "available": [{"from": lo, "to": hi} for lo, hi in present],
            "missing": missing,
            "available_seconds": seconds,
            "percent": 100.0 * seconds / (end - start) if end > start else 0.0,
        }
    return out
