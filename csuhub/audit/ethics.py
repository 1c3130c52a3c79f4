"""The ethics committee's figures: counts and durations, never footage.

Read from the audit (playback, exports), the requisition register, the mask
lifts, the camera register and the segment index, over one period. Functions
of a connection, run on the store's thread (``store.call(figures, ...)``).

An action audited when it starts and again when it ends is counted once: by
its first entry (the one with no ``ref``); refused and failed attempts are
counted apart, once each (an export that started and failed counts as failed,
not as an export). A requisition's export writes, besides its own entries, a
``recording.export`` story per camera (its details name the requisition):
parts of one export, not exports of their own.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

#: the audited actions that are exports of footage
EXPORT_ACTIONS = ("recording.export", "requisition.export")
#: the audited actions that are playback with a start and an end parameter
PLAYBACK_ACTIONS = ("recording.view",)
_COUNTED = "ref IS NULL AND outcome IN ('ok', 'started')"
#: a ``recording.export`` made for a requisition (``extra``: its details carry it)
_FOR_REQUISITION = (
    "action = 'recording.export' AND json_valid(details) "
    "AND json_extract(details, '$.requisition') IS NOT NULL"
)


def figures(
    conn: sqlite3.Connection, start: float, end: float, cap: float, now: float
) -> dict[str, Any]:
    """Every figure of the period [start, end); ``cap`` is the legal retention cap
    in seconds, ``now`` the time compliance is judged at."""
    return {
        "period": {"from": start, "to": end},
        "requisitions": requisitions(conn, start, end),
        "exports": exports(conn, start, end),
        "playback": playback(conn, start, end),
        "mask_lifts": mask_lifts(conn, start, end),
        "cameras_per_district": cameras_per_district(conn),
        "retention": retention_compliance(conn, cap, now),
    }


def _pairs(rows: Any) -> dict[str, int]:
    return {("(none)" if k is None else str(k)): int(v) for k, v in rows}


def requisitions(conn: sqlite3.Connection, start: float, end: float) -> dict[str, Any]:
    where = "FROM requisitions WHERE created_at >= ? AND created_at < ?"
    args = (start, end)
    total = conn.execute(f"SELECT count(*) {where}", args).fetchone()[0]
    status = conn.execute(f"SELECT status, count(*) {where} GROUP BY status", args)
    outcome = conn.execute(
        f"SELECT outcome, count(*) {where} AND closed_at IS NOT NULL GROUP BY outcome", args
    )
    return {"received": int(total), "by_status": _pairs(status), "by_outcome": _pairs(outcome)}


def exports(conn: sqlite3.Connection, start: float, end: float) -> dict[str, Any]:
    """Exports begun in the period, by stated reason; refused and failed ones apart."""
    marks = ", ".join("?" * len(EXPORT_ACTIONS))
    rows = conn.execute(
        f"SELECT id, ref, outcome, reason, {_FOR_REQUISITION} FROM audit_log "
        f"WHERE ts >= ? AND ts < ? AND action IN ({marks}) ORDER BY id",
        (start, end, *EXPORT_ACTIONS),
    ).fetchall()
    # an ending may fall after the period: the failures of what began in it
    failed = {
        ref
        for (ref,) in conn.execute(
            f"SELECT ref FROM audit_log WHERE ts >= ? AND action IN ({marks}) "
            "AND outcome = 'failed' AND ref IS NOT NULL",
            (start, *EXPORT_ACTIONS),
        )
    }
    parts: set[int] = set()  # a requisition export's per-camera entries
    reasons: dict[str, int] = {}
    not_done: dict[str, int] = {}
    for entry_id, ref, outcome, reason, for_requisition in rows:
        if for_requisition or ref in parts:
            parts.add(entry_id)
        elif outcome in ("refused", "failed"):
            not_done[outcome] = not_done.get(outcome, 0) + 1
        elif ref is None and entry_id not in failed:
            key = "(none)" if reason is None else str(reason)
            reasons[key] = reasons.get(key, 0) + 1
    by_reason = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    return {"total": sum(reasons.values()), "by_reason": by_reason, "not_done": not_done}


def playback(conn: sqlite3.Connection, start: float, end: float) -> dict[str, Any]:
    """Hours of footage played, by camera and by role, from each playback entry's
    ``start``/``end`` parameters (an entry without them counts, for 0 hours)."""
    marks = ", ".join("?" * len(PLAYBACK_ACTIONS))
    rows = conn.execute(
        f"SELECT target, role, details FROM audit_log WHERE ts >= ? AND ts < ? "
        f"AND action IN ({marks}) AND {_COUNTED}",
        (start, end, *PLAYBACK_ACTIONS),
    )
    by_camera: dict[str, float] = {}
    by_role: dict[str, float] = {}
    sessions = 0
    for target, role, details in rows:
        seconds = _span(details)
        camera = target or "(none)"
        who = role or "(none)"
        by_camera[camera] = by_camera.get(camera, 0.0) + seconds
        by_role[who] = by_role.get(who, 0.0) + seconds
        sessions += 1
    total = sum(by_camera.values())
    return {
        "views": sessions,
        "hours": round(total / 3600, 3),
        "hours_by_camera": {k: round(v / 3600, 3) for k, v in sorted(by_camera.items())},
        "hours_by_role": {k: round(v / 3600, 3) for k, v in sorted(by_role.items())},
    }


def _span(details: str) -> float:
    try:
        params = json.loads(details)
        first, last = float(params["start"]), float(params["end"])
    except (ValueError, TypeError, KeyError):
        return 0.0
    span = last - first
    return span if 0 < span < float("inf") else 0.0


def mask_lifts(conn: sqlite3.Connection, start: float, end: float) -> dict[str, Any]:
    where = "FROM mask_lifts WHERE requested_at >= ? AND requested_at < ?"
    args = (start, end)
    total = conn.execute(f"SELECT count(*) {where}", args).fetchone()[0]
    status = conn.execute(f"SELECT status, count(*) {where} GROUP BY status", args)
    per_camera = conn.execute(f"SELECT camera_id, count(*) {where} GROUP BY camera_id", args)
    for_requisition = conn.execute(
        f"SELECT count(*) {where} AND requisition_id IS NOT NULL", args
    ).fetchone()[0]
    return {
        "requested": int(total),
        "by_status": _pairs(status),
        "by_camera": _pairs(per_camera),
        "for_requisitions": int(for_requisition),
    }


def cameras_per_district(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT json_extract(location, '$.district') AS d, count(*) FROM cameras "
        "WHERE json_valid(location) GROUP BY d ORDER BY d"
    )
    return _pairs(rows)


def retention_compliance(conn: sqlite3.Connection, cap: float, now: float) -> dict[str, Any]:
    """The oldest footage against the legal cap. Footage under a legal hold (a
    judicial requisition) may lawfully outlive the cap, so it is counted apart."""
    oldest, oldest_free = conn.execute(
        "SELECT min(start), min(CASE WHEN hold < 2 THEN start END) FROM segments"
    ).fetchone()
    past = conn.execute(
        "SELECT count(*), coalesce(sum(CASE WHEN hold >= 2 THEN 1 END), 0) FROM segments "
        "WHERE end <= ?",
        (now - cap,),
    ).fetchone()
    beyond = int(past[0]) - int(past[1])
    return {
        "legal_cap_days": round(cap / 86400, 3),
        "oldest_footage": oldest,
        "oldest_footage_age_days": None if oldest is None else round((now - oldest) / 86400, 3),
        "oldest_unheld_footage_age_days": (
            None if oldest_free is None else round((now - oldest_free) / 86400, 3)
        ),
        "segments_past_cap": beyond,
        "segments_past_cap_under_legal_hold": int(past[1]),
        "compliant": beyond == 0,
    }
