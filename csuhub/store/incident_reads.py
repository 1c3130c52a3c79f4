"""Reading incidents with their linked cameras, bookmarks and notes (SQL, on the
store's thread; the writes are :mod:`csuhub.store.incidents`). Rows come out as
plain dicts: no ``sqlite3`` type leaves the store."""

from __future__ import annotations

import sqlite3
from typing import Any


def _incident(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data.pop("cameras", None)  # the mirror retention reads; incident_cameras is the truth
    incident_id = data["id"]
    data["linked"] = [
        dict(r)
        for r in conn.execute(
            "SELECT camera_id, distance_m, reason, linked_at, linked_by FROM incident_cameras "
            "WHERE incident_id=? ORDER BY position, rowid",
            (incident_id,),
        )
    ]
    data["bookmarks"] = [
        dict(r)
        for r in conn.execute(
            "SELECT id, camera_id, time, note, created_at, created_by FROM incident_bookmarks "
            "WHERE incident_id=? ORDER BY id",
            (incident_id,),
        )
    ]
    data["notes"] = [
        dict(r)
        for r in conn.execute(
            "SELECT id, text, created_at, created_by FROM incident_notes "
            "WHERE incident_id=? ORDER BY id",
            (incident_id,),
        )
    ]
    return data


def get(conn: sqlite3.Connection, incident_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM incidents WHERE id=?", (incident_id,)).fetchone()
    return None if row is None else _incident(conn, row)


def by_call(conn: sqlite3.Connection, line: str, call_id: str) -> dict[str, Any] | None:
    """The call's open incident, else its latest closed one (a call id reused
    after its incident closed has several, each following the one before)."""
    row = conn.execute(
        "SELECT * FROM incidents WHERE source_line=? AND call_id=? "
        "ORDER BY status='open' DESC, id DESC LIMIT 1",
        (line, call_id),
    ).fetchone()
    return None if row is None else _incident(conn, row)


def select(
    conn: sqlite3.Connection,
    status: str | None,
    start: float | None,
    end: float | None,
    camera_id: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first: incidents opened in [start, end), of that status, linked to
    that camera."""
    where, args = [], []
    if status is not None:
        where.append("status=?")
        args.append(status)
    if start is not None:
        where.append("opened_at>=?")
        args.append(start)
    if end is not None:
        where.append("opened_at<?")
        args.append(end)
    if camera_id is not None:
        where.append("id IN (SELECT incident_id FROM incident_cameras WHERE camera_id=?)")
        args.append(camera_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT * FROM incidents {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    ).fetchall()
    return [_incident(conn, r) for r in rows]


def stale(conn: sqlite3.Connection, before: float) -> list[int]:
    """Open incidents unchanged since ``before`` (``incidents.auto_close``)."""
    rows = conn.execute(
        "SELECT id FROM incidents WHERE status='open' AND COALESCE(updated_at, opened_at) < ? "
        "ORDER BY id",
        (before,),
    )
    return [int(r[0]) for r in rows]
