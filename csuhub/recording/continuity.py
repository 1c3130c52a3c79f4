"""Continuity proof: which seconds of a range exist, and why the others do not.

A court reads this, so every missing second says what is known of it, and
nothing is claimed that the store cannot back:

- ``future``: after now; nothing could have been recorded yet.
- ``in_progress``: the open segment of a running recorder. Segments are
  indexed when they close, so the last minute of a live camera is not yet in
  the index; calling it "not recorded" would be false.
- ``destroyed``: the destruction register covers it (retention or storage
  pressure, with the register entry). The register wins over a gap row for the
  same time: the footage existed, whatever an interruption recorded before it.
- ``not_recorded``: a gap row and its reason (camera offline, ffmpeg restart,
  hub down...), or no trace at all.
- ``damaged``: a segment exists but is unusable.

Percentages count only the past that can be measured: future and in-progress
time are left out of both sides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from csuhub.store import Segment, Store

#: Holes shorter than this between segments are keyframe rounding, not gaps.
TOLERANCE = 1.5
#: How far past its nominal length a segment may still be open: the segmenter
#: closes on the next keyframe, then the segment is hashed and indexed.
OPEN_SLACK = 5.0

FUTURE = "future"
IN_PROGRESS = "in_progress"
DESTROYED = "destroyed"
NOT_RECORDED = "not_recorded"
DAMAGED = "damaged"
#: states that are not missing footage, and are never blurred into one that is
LIVE = (FUTURE, IN_PROGRESS)


class UnknownCamera(LookupError):
    """Neither the register nor the index nor the destruction register knows the camera."""


@dataclass(frozen=True, slots=True)
class RecorderNow:
    """What the caller knows of the camera's recorder at this moment.

    The hub knows it exactly; the CLI infers it (a hub is running on the data
    directory and the camera is online and authorised). ``segment`` bounds how
    long the open segment can be: past that, a silent recorder is a hole.
    """

    running: bool
    segment: float = 60.0


def recorder_of(hub: Any, camera_id: str) -> RecorderNow:
    """Inside the hub the recording manager knows: a recorder is running and has
    not said it is retrying (a full disk, a stalled ffmpeg) or blocked."""
    manager = hub.recording
    state = manager.states.get(camera_id, ("", ""))[0]
    running = camera_id in manager.recorders and state in ("starting", "recording")
    return RecorderNow(running, hub.config.settings.recording.segment)


@dataclass(frozen=True, slots=True)
class _Mark:
    start: float
    end: float
    state: str
    reason: str
    extra: tuple[tuple[str, Any], ...] = ()


async def known_camera(store: Store, camera_id: str) -> bool:
    """A camera is known if the register, the index, the gaps or the destruction
    register name it: a forgotten camera's footage stays answerable."""
    return await store.camera_known(camera_id)


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


def open_segment(
    now: float, last_end: float | None, recorder: RecorderNow | None
) -> tuple[float, float] | None:
    """The span the running recorder's open segment can cover: from the last
    indexed end, but never longer ago than one segment (and its slack)."""
    if recorder is None or not recorder.running:
        return None
    earliest = now - (recorder.segment * 1.5 + OPEN_SLACK)
    begin = max(last_end if last_end is not None else earliest, earliest)
    return (begin, now) if begin < now else None


def destruction_reason(entry: dict[str, Any]) -> str:
    if entry["policy"] == "storage_pressure":
        return f"destroyed under storage pressure (register entry {entry['id']})"
    return f"destroyed by retention, policy {entry['policy']} (register entry {entry['id']})"


def classify(hole: tuple[float, float], marks: list[_Mark]) -> list[dict[str, Any]]:
    """Split a hole into pieces, each labelled by the first mark (in priority
    order) that covers it; uncovered time is "not recorded". Pieces shorter than
    the tolerance join a neighbour: they are timestamp rounding, not facts."""
    lo, hi = hole
    cuts = {lo, hi}
    for mark in marks:
        for t in (mark.start, mark.end):
            if lo < t < hi:
                cuts.add(t)
    edges = sorted(cuts)
    pieces: list[dict[str, Any]] = []
    for a, b in pairwise(edges):
        mid = (a + b) / 2
        found = next((m for m in marks if m.start <= mid < m.end), None)
        label: dict[str, Any] = (
            {"state": found.state, "reason": found.reason, **dict(found.extra)}
            if found is not None
            else {"state": NOT_RECORDED, "reason": "not recorded"}
        )
        if pieces and _same(pieces[-1], label):
            pieces[-1]["end"] = b
        else:
            pieces.append({"start": a, "end": b, **label})
    return _absorb(pieces)


def _absorb(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join pieces shorter than the tolerance to a neighbour, but never across
    the line between the past and the future or the open segment."""
    out: list[dict[str, Any]] = []
    for piece in pieces:
        if out and _fuzzy(piece) and out[-1]["state"] not in LIVE:
            out[-1]["end"] = piece["end"]
        elif out and _fuzzy(out[-1]) and piece["state"] not in LIVE:
            out[-1] = {**piece, "start": out[-1]["start"]}
        else:
            out.append(piece)
        if len(out) > 1 and _same(out[-2], out[-1]):
            joined = out.pop()
            out[-1]["end"] = joined["end"]
    return out


def _fuzzy(piece: dict[str, Any]) -> bool:
    return piece["state"] not in LIVE and piece["end"] - piece["start"] < TOLERANCE


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["state"] == b["state"] and a["reason"] == b["reason"])


async def continuity(
    store: Store,
    camera_id: str,
    start: float,
    end: float,
    *,
    now: float | None = None,
    recorder: RecorderNow | None = None,
) -> dict[str, Any]:
    """The continuity report of one camera over [start, end).

    ``recorder`` says whether the camera is being recorded now; without it,
    nothing is called in progress.
    """
    now = time.time() if now is None else now
    segments = await store.segments(camera_id, start, end)
    missing = holes(segments, start, end)
    marks: list[_Mark] = []
    if end > now:
        marks.append(_Mark(max(now, start), end, FUTURE, "future"))
    live = None
    if recorder is not None and recorder.running and start < now:
        live = open_segment(now, await store.last_segment_end(camera_id), recorder)
        if live is not None:
            marks.append(_Mark(live[0], live[1], IN_PROGRESS, "recording in progress"))
    if missing:
        for entry in await store.retention.destructions(camera_id, start, end):
            marks.append(
                _Mark(
                    entry["footage_start"],
                    entry["footage_end"],
                    DESTROYED,
                    destruction_reason(entry),
                    (("register_entry", entry["id"]), ("policy", entry["policy"])),
                )
            )
        for gap in await store.gaps(camera_id, start, end):
            marks.append(_Mark(gap.start, gap.end, NOT_RECORDED, gap.reason))
        for seg in segments:
            if seg.status != "ok":
                marks.append(_Mark(seg.start, seg.end, DAMAGED, f"segment {seg.status}"))
    pieces = [piece for hole in missing for piece in classify(hole, marks)]
    spent: dict[str, float] = {}
    for piece in pieces:
        piece["duration"] = round(piece["end"] - piece["start"], 3)
        spent[piece["state"]] = spent.get(piece["state"], 0.0) + piece["end"] - piece["start"]
    future = max(0.0, end - max(start, now))
    in_progress = spent.get(IN_PROGRESS, 0.0)
    measured = max(0.0, (end - start) - future - in_progress)
    lost = sum(v for k, v in spent.items() if k not in (FUTURE, IN_PROGRESS))
    recorded = max(0.0, measured - lost)
    return {
        "camera_id": camera_id,
        "from": start,
        "to": end,
        "now": now,
        "measured_s": round(measured, 3),
        "recorded_s": round(recorded, 3),
        "in_progress_s": round(in_progress, 3),
        "future_s": round(future, 3),
        "destroyed_s": round(spent.get(DESTROYED, 0.0), 3),
        # None when no past time can be measured (the whole range is ahead or open)
        "percent": round(100.0 * recorded / measured, 3) if measured > 0 else None,
        "segments": len([s for s in segments if s.status == "ok"]),
        "gaps": pieces,
    }
