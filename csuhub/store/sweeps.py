"""Sweeps, the deletion journal and the destruction register (SQL, on the store's thread).

The safety of retention rests on SQLite transactions, not on Python locks, so
that the hub's sweeper and a CLI in another process cannot race:

* a sweep *marks* rows (``segments.sweep_id``) in one transaction, only rows
  whose hold level the criterion allows and that no other sweep has marked;
* a hold can never claim a marked row (see :mod:`csuhub.store.holds`);
* the sweep then unlinks the marked files and deletes the rows, writing the
  register in the same transaction as the delete.

A crash between mark and delete leaves marked rows; start-up recovery
finishes the sweep (the decision was committed, the files may be half gone).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from csuhub.store.holds import strongest


@dataclass(frozen=True, slots=True)
class Marked:
    """A segment a sweep has committed to destroy."""

    id: int
    camera_id: str
    start: float
    end: float
    size: int
    path: str
    policy: str


@dataclass(frozen=True, slots=True)
class MarkRequest:
    """One expiry of a sweep's plan: a camera's footage that ended by ``before`` and
    whose hold level is at most ``max_level`` goes, under ``policy``."""

    camera_id: str
    before: float
    max_level: int
    policy: str


def marked(conn: sqlite3.Connection, sweep_id: int) -> list[Marked]:
    """The rows a sweep has marked and not yet destroyed (the deletion journal)."""
    return [
        Marked(*r)
        for r in conn.execute(
            "SELECT id, camera_id, start, end, size, path, sweep_policy FROM segments "
            "WHERE sweep_id=?",
            (sweep_id,),
        )
    ]


def _exclusion(conn: sqlite3.Connection, ids: list[int]) -> str:
    """Load ``ids`` into a temporary table; returns the SQL condition leaving them out."""
    if not ids:
        return ""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS sweep_exclude(id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM sweep_exclude")
    conn.executemany("INSERT OR IGNORE INTO sweep_exclude(id) VALUES(?)", [(i,) for i in ids])
    return " AND id NOT IN (SELECT id FROM sweep_exclude)"


def begin_sweep(conn: sqlite3.Connection, origin: str) -> int:
    cur = conn.execute("INSERT INTO sweeps(started_at, origin) VALUES(?, ?)", (time.time(), origin))
    return int(cur.lastrowid or 0)


def end_sweep(conn: sqlite3.Connection, sweep_id: int, state: str) -> None:
    conn.execute(
        "UPDATE sweeps SET finished_at=?, state=? WHERE id=?", (time.time(), state, sweep_id)
    )


def unfinished_sweeps(conn: sqlite3.Connection) -> list[int]:
    ids = {int(r[0]) for r in conn.execute("SELECT id FROM sweeps WHERE state='running'")}
    ids |= {
        int(r[0])
        for r in conn.execute("SELECT DISTINCT sweep_id FROM segments WHERE sweep_id IS NOT NULL")
    }
    return sorted(ids)


def mark(
    conn: sqlite3.Connection,
    sweep_id: int,
    expiries: Sequence[MarkRequest],
    limit: int,
    excluded: list[int],
) -> tuple[list[Marked], int]:
    extra = _exclusion(conn, excluded)
    remaining = limit
    exhausted = 0
    for request in expiries:
        cur = conn.execute(
            "UPDATE segments SET sweep_id=?, sweep_policy=? WHERE id IN ("
            "SELECT id FROM segments WHERE camera_id=? AND end <= ? AND hold <= ? "
            f"AND sweep_id IS NULL{extra} ORDER BY end LIMIT ?)",
            (
                sweep_id,
                request.policy,
                request.camera_id,
                request.before,
                request.max_level,
                remaining,
            ),
        )
        if cur.rowcount >= remaining:
            break  # the batch is full; this expiry may have more
        remaining -= cur.rowcount
        exhausted += 1
    return marked(conn, sweep_id), exhausted


def candidates(
    conn: sqlite3.Connection, request: MarkRequest, limit: int, excluded: list[int]
) -> list[tuple[int, float, float, str]]:
    extra = _exclusion(conn, excluded)
    return [
        (int(r[0]), r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT id, start, end, path FROM segments WHERE camera_id=? AND end <= ? "
            f"AND hold <= ? AND sweep_id IS NULL{extra} ORDER BY end LIMIT ?",
            (request.camera_id, request.before, request.max_level, limit),
        )
    ]


def mark_ids(
    conn: sqlite3.Connection,
    sweep_id: int,
    approved: Sequence[tuple[MarkRequest, Sequence[int]]],
) -> list[Marked]:
    for request, ids in approved:
        conn.executemany(
            "UPDATE segments SET sweep_id=?, sweep_policy=? WHERE id=? AND camera_id=? "
            "AND end <= ? AND hold <= ? AND sweep_id IS NULL",
            [
                (
                    sweep_id,
                    request.policy,
                    seg_id,
                    request.camera_id,
                    request.before,
                    request.max_level,
                )
                for seg_id in ids
            ],
        )
    return marked(conn, sweep_id)


def destroyed(
    conn: sqlite3.Connection, sweep_id: int, ids: list[int], register: list[dict[str, Any]]
) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS sweep_done(id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM sweep_done")
    conn.executemany("INSERT INTO sweep_done(id) VALUES(?)", [(i,) for i in ids])
    conn.execute(
        "DELETE FROM segments WHERE sweep_id=? AND id IN (SELECT id FROM sweep_done)",
        (sweep_id,),
    )
    conn.executemany(
        "INSERT INTO destructions(camera_id, day, policy, segments, bytes, seconds, "
        "footage_start, footage_end, first_destroyed_at, last_destroyed_at) "
        "VALUES(:camera_id, :day, :policy, :segments, :bytes, :seconds, :start, "
        ":end, :at, :at) ON CONFLICT(camera_id, day, policy) DO UPDATE SET "
        "segments = segments + excluded.segments, bytes = bytes + excluded.bytes, "
        "seconds = seconds + excluded.seconds, "
        "footage_start = MIN(footage_start, excluded.footage_start), "
        "footage_end = MAX(footage_end, excluded.footage_end), "
        "last_destroyed_at = excluded.last_destroyed_at",
        register,
    )
    conn.execute(
        "UPDATE sweeps SET segments = segments + ?, bytes = bytes + ? WHERE id=?",
        (sum(r["segments"] for r in register), sum(r["bytes"] for r in register), sweep_id),
    )


def unmark(conn: sqlite3.Connection, sweep_id: int, ids: list[int]) -> None:
    updates = []
    for seg_id in ids:
        row = conn.execute(
            "SELECT camera_id, start, end FROM segments WHERE id=? AND sweep_id=?",
            (seg_id, sweep_id),
        ).fetchone()
        if row is None:
            continue
        updates.append((*strongest(conn, *row), seg_id))
    conn.executemany(
        "UPDATE segments SET sweep_id=NULL, sweep_policy=NULL, hold=?, hold_reason=? WHERE id=?",
        updates,
    )


def select_sweeps(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    return [
        dict(r) for r in conn.execute("SELECT * FROM sweeps ORDER BY id DESC LIMIT ?", (limit,))
    ]


# -- what the policies look at -------------------------------------------------------


def oldest_unheld(
    conn: sqlite3.Connection, need: int, cutoffs: dict[str, float], default_cutoff: float
) -> tuple[dict[str, float], int]:
    found = 0
    befores: dict[str, float] = {}
    cursor = conn.execute(
        "SELECT camera_id, end, size FROM segments WHERE hold = 0 AND sweep_id IS NULL "
        "ORDER BY start"
    )
    while found < need:
        rows = cursor.fetchmany(2000)
        if not rows:
            break
        for camera_id, end, size in rows:
            if end > cutoffs.get(camera_id, default_cutoff):
                continue
            befores[camera_id] = max(befores.get(camera_id, end), end)
            found += size
            if found >= need:
                break
    cursor.close()
    return befores, found


def expired_summary(
    conn: sqlite3.Connection, camera_id: str, before: float, max_level: int
) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(start), MAX(end) FROM segments "
        "WHERE camera_id=? AND end <= ? AND hold <= ? AND sweep_id IS NULL",
        (camera_id, before, max_level),
    ).fetchone()
    if not row[0]:
        return None
    return {"segments": row[0], "bytes": row[1], "from": row[2], "to": row[3]}


def overview(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        "SELECT camera_id, COUNT(*), COALESCE(SUM(size),0), MIN(start), MAX(end), "
        "COALESCE(SUM(hold = 1), 0), COALESCE(SUM(CASE WHEN hold = 1 THEN size END), 0), "
        "COALESCE(SUM(hold = 2), 0), COALESCE(SUM(CASE WHEN hold = 2 THEN size END), 0) "
        "FROM segments GROUP BY camera_id"
    ):
        out[r[0]] = {
            "segments": r[1],
            "bytes": r[2],
            "oldest": r[3],
            "newest": r[4],
            "preserved": {"segments": r[5], "bytes": r[6]},
            "legal_hold": {"segments": r[7], "bytes": r[8]},
        }
    return out


# -- the destruction register ----------------------------------------------------------


#: the destruction register's columns, in the order its CSV exports give them (the
#: CLI's also leads with the row ``id``): one list, so the two exports cannot drift
DESTRUCTION_COLUMNS = (
    "camera_id",
    "day",
    "policy",
    "segments",
    "bytes",
    "seconds",
    "footage_start",
    "footage_end",
    "first_destroyed_at",
    "last_destroyed_at",
)


def select_destructions(
    conn: sqlite3.Connection, camera_id: str | None, start: float | None, end: float | None
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM destructions WHERE footage_end > ? AND footage_start < ?"
    args: list[Any] = [
        start if start is not None else float("-inf"),
        end if end is not None else float("inf"),
    ]
    if camera_id is not None:
        sql += " AND camera_id=?"
        args.append(camera_id)
    return [dict(r) for r in conn.execute(sql + " ORDER BY camera_id, day, policy", args)]


def record_kept(conn: sqlite3.Connection, sweep_id: int, kept: list[dict[str, Any]]) -> None:
    now = time.time()
    conn.executemany(
        "INSERT INTO retention_kept(sweep_id, camera_id, reason, failure, segments, "
        "footage_start, footage_end, kept_at) VALUES(?,?,?,?,?,?,?,?)",
        [
            (
                sweep_id,
                k["camera_id"],
                k["reason"],
                int(bool(k["failure"])),
                k["segments"],
                k["footage_start"],
                k["footage_end"],
                now,
            )
            for k in kept
        ],
    )


def select_kept(
    conn: sqlite3.Connection, camera_id: str | None, sweep_id: int | None
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM retention_kept WHERE 1=1"
    args: list[Any] = []
    if camera_id is not None:
        sql += " AND camera_id=?"
        args.append(camera_id)
    if sweep_id is not None:
        sql += " AND sweep_id=?"
        args.append(sweep_id)
    return [dict(r) for r in conn.execute(sql + " ORDER BY id", args)]
