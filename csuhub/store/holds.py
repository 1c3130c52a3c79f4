"""Holds over footage, and the incidents that place them (SQL, on the store's thread).

A hold sets ``segments.hold`` in the same transaction as its row, and never
claims a row a sweep has marked: those are reported as being destroyed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Hold levels: what a hold wins over.
PRESERVE = 1  # the retention period (incidents, flagged footage), not the legal cap
LEGAL = 2  # everything: footage under a judicial requisition (CSI L252-5)

#: An open-ended hold (an incident still running) ends here.
FOREVER = 1e15

#: The strongest active hold over (camera, start, end): its level and its label.
STRONGEST_HOLD = (
    "SELECT level, kind || ' ' || ref FROM holds WHERE released_at IS NULL "
    "AND camera_id=? AND end > ? AND start < ? ORDER BY level DESC, id LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    camera_id: str
    start: float
    end: float
    level: int
    kind: str
    ref: str
    reason: str
    created_at: float
    created_by: str
    released_at: float | None
    alerted_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "start": self.start,
            "end": None if self.end >= FOREVER else self.end,
            "level": "legal" if self.level >= LEGAL else "preserve",
            "kind": self.kind,
            "ref": self.ref,
            "reason": self.reason,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "released_at": self.released_at,
        }


def _hold(row: sqlite3.Row) -> Hold:
    return Hold(
        row["id"],
        row["camera_id"],
        row["start"],
        row["end"],
        row["level"],
        row["kind"],
        row["ref"],
        row["reason"],
        row["created_at"],
        row["created_by"],
        row["released_at"],
        row["alerted_at"],
    )


def strongest(
    conn: sqlite3.Connection, camera_id: str, start: float, end: float
) -> tuple[int, Any]:
    """(level, label) of the strongest active hold over the range, (0, None) if none."""
    row = conn.execute(STRONGEST_HOLD, (camera_id, start, end)).fetchone()
    return (row[0], row[1]) if row else (0, None)


def place_holds(
    conn: sqlite3.Connection,
    cameras: Iterable[str],
    start: float,
    end: float,
    *,
    level: int,
    kind: str,
    ref: str,
    reason: str,
    actor: str,
) -> dict[str, dict[str, Any]]:
    """Insert holds and flag the segments (inside the caller's transaction).

    Returns, per camera, what the hold now covers and which indexed segments were
    already committed to destruction by a sweep (they cannot be held any more)."""
    now = time.time()
    result: dict[str, dict[str, Any]] = {}
    for camera_id in cameras:
        conn.execute(
            "INSERT INTO holds(camera_id, start, end, level, kind, ref, reason, created_at, "
            "created_by) VALUES(?,?,?,?,?,?,?,?,?)",
            (camera_id, start, end, level, kind, ref, reason, now, actor),
        )
        conn.execute(
            "UPDATE segments SET hold=?, hold_reason=? WHERE camera_id=? AND end > ? "
            "AND start < ? AND sweep_id IS NULL AND hold < ?",
            (level, f"{kind} {ref}", camera_id, start, end, level),
        )
        row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(sweep_id IS NOT NULL), 0) "
            "FROM segments WHERE camera_id=? AND end > ? AND start < ?",
            (camera_id, start, end),
        ).fetchone()
        result[camera_id] = {
            "segments": row[0] - row[2],
            "bytes": row[1],
            "being_destroyed": row[2],
        }
    return result


def release_holds(conn: sqlite3.Connection, kind: str, ref: str, actor: str) -> dict[str, Any]:
    """Release every active hold of (kind, ref) and recompute the segments' flags."""
    rows = conn.execute(
        "SELECT * FROM holds WHERE kind=? AND ref=? AND released_at IS NULL", (kind, ref)
    ).fetchall()
    now = time.time()
    conn.execute(
        "UPDATE holds SET released_at=?, released_by=? WHERE kind=? AND ref=? "
        "AND released_at IS NULL",
        (now, actor, kind, ref),
    )
    unheld = 0
    for row in rows:
        affected = conn.execute(
            "SELECT id, start, end FROM segments WHERE camera_id=? AND end > ? AND start < ? "
            "AND hold > 0",
            (row["camera_id"], row["start"], row["end"]),
        ).fetchall()
        updates = [
            (*strongest(conn, row["camera_id"], seg_start, seg_end), seg_id)
            for seg_id, seg_start, seg_end in affected
        ]
        conn.executemany("UPDATE segments SET hold=?, hold_reason=? WHERE id=?", updates)
        unheld += len(updates)
    return {"holds": len(rows), "segments_rechecked": unheld}


def select_holds(
    conn: sqlite3.Connection, active: bool, kind: str | None, camera_id: str | None
) -> list[Hold]:
    sql = "SELECT * FROM holds WHERE 1=1"
    args: list[Any] = []
    if active:
        sql += " AND released_at IS NULL"
    if kind is not None:
        sql += " AND kind=?"
        args.append(kind)
    if camera_id is not None:
        sql += " AND camera_id=?"
        args.append(camera_id)
    return [_hold(r) for r in conn.execute(sql + " ORDER BY id", args)]


def mark_alerted(conn: sqlite3.Connection, hold_ids: list[int]) -> None:
    conn.executemany(
        "UPDATE holds SET alerted_at=? WHERE id=?", [(time.time(), i) for i in hold_ids]
    )


# -- incidents (what retention needs of them) ---------------------------------------------


def open_incident(
    conn: sqlite3.Connection,
    reference: str,
    cameras: list[str],
    start: float,
    end: float | None,
    title: str,
) -> int:
    now = time.time()
    cur = conn.execute(
        "INSERT INTO incidents(reference, title, cameras, start, end, opened_at, updated_at, "
        "received_at) VALUES(?,?,?,?,?,?,?,?)",
        (reference, title, json.dumps(cameras), start, end, now, now, start),
    )
    return int(cur.lastrowid or 0)


def close_incident(conn: sqlite3.Connection, incident_id: int, end: float | None) -> bool:
    now = time.time()
    cur = conn.execute(
        "UPDATE incidents SET closed_at=?, updated_at=?, status='closed', end=COALESCE(end, ?) "
        "WHERE id=? AND closed_at IS NULL",
        (now, now, end if end is not None else now, incident_id),
    )
    return cur.rowcount > 0


def end_holds(conn: sqlite3.Connection, kind: str, ref: str, end: float) -> int:
    """End the active holds of (kind, ref) at ``end`` (an open incident's hold,
    open-ended until then, ends when it is closed): the register then says what
    the hold covered, before it is released."""
    cur = conn.execute(
        "UPDATE holds SET end=? WHERE kind=? AND ref=? AND released_at IS NULL AND end > ?",
        (end, kind, ref, end),
    )
    return cur.rowcount


def select_incidents(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM incidents ORDER BY id").fetchall()
    return [{**dict(r), "cameras": json.loads(r["cameras"])} for r in rows]
