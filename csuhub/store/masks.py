"""Privacy masks drawn through the API, and mask lifts (dual control).

A drawn mask is never deleted: replacing a camera's masks marks the old rows
removed (by whom, when), so which masks applied at a given time stays known.
A lift's every transition is one conditional UPDATE, so two approvers, or an
approval racing the expiry sweep, cannot both win; the requester can never be
the approver, checked here as well as by the caller. Each change writes its
audit entry in its own transaction (``csuhub.store.audited``): both or neither.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from csuhub.store.audited import Entry, append

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal
    from csuhub.store.db import Database

LIFT_STATUSES = ("requested", "approved", "refused", "expired", "ended")

_LIFT_COLUMNS = (
    "id, camera_id, reason, requisition_id, status, requested_by, requested_at, "
    "duration_s, decided_by, decided_at, expires_at, ended_at"
)


def _mask(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["polygon"] = [tuple(p) for p in json.loads(data["polygon"])]
    return data


def drawn(conn: sqlite3.Connection, camera_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM privacy_masks WHERE camera_id=? AND removed_at IS NULL ORDER BY id",
        (camera_id,),
    )
    return [_mask(r) for r in rows]


def replace(
    conn: sqlite3.Connection,
    camera_id: str,
    masks: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    actor: str,
    now: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(removed, added), in the caller's transaction."""
    removed = drawn(conn, camera_id)
    conn.execute(
        "UPDATE privacy_masks SET removed_by=?, removed_at=? "
        "WHERE camera_id=? AND removed_at IS NULL",
        (actor, now, camera_id),
    )
    for name, polygon in masks:
        conn.execute(
            "INSERT INTO privacy_masks(camera_id, name, polygon, created_by, created_at) "
            "VALUES(?,?,?,?,?)",
            (camera_id, name, json.dumps([list(p) for p in polygon]), actor, now),
        )
    return removed, drawn(conn, camera_id)


def audited(conn: sqlite3.Connection, entry: Entry, func: Callable[..., Any], *args: Any) -> Any:
    """``csuhub.store.audited.apply`` for these changes, whose entry names what
    only the transaction knows: the lift's id (or the masks removed). A change
    that returns None changed nothing (a lift no longer pending) and writes no
    entry, as ``apply``'s ``False``; anything else (an empty list of masks
    included) is written."""
    result = func(conn, *args)
    if result is None:
        return None
    params = dict(entry.params)
    if isinstance(result, dict):
        params.setdefault("lift", result.get("id"))
    elif isinstance(result, tuple):  # replace: (removed, in force)
        params["removed"] = [m["name"] for m in result[0]]
    append(conn, dataclasses.replace(entry, params=params))
    return result


def lift(conn: sqlite3.Connection, lift_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_LIFT_COLUMNS} FROM mask_lifts WHERE id=?", (lift_id,)).fetchone()
    return None if row is None else dict(row)


def lifts(
    conn: sqlite3.Connection,
    camera_ids: Sequence[str] | None,
    statuses: Sequence[str],
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, on ``camera_ids`` only (every camera with None): the scope
    is applied before the limit, so a narrow scope still gets its newest."""
    where, params = [], []
    if camera_ids is not None:
        if not camera_ids:
            return []
        where.append(f"camera_id IN ({','.join('?' * len(camera_ids))})")
        params.extend(camera_ids)
    if statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_LIFT_COLUMNS} FROM mask_lifts {clause} ORDER BY id DESC LIMIT ?",
        (*params, limit),
    )
    return [dict(r) for r in rows]


def lift_cameras(conn: sqlite3.Connection) -> list[str]:
    """Every camera a lift was ever asked for (a few hundred at most: the
    city's cameras), for the caller to keep those in a scope."""
    rows = conn.execute("SELECT DISTINCT camera_id FROM mask_lifts ORDER BY camera_id")
    return [str(r[0]) for r in rows]


def create_lift(
    conn: sqlite3.Connection,
    camera_id: str,
    reason: str,
    requisition_id: int | None,
    requested_by: str,
    duration_s: float,
    now: float,
) -> dict[str, Any]:
    cur = conn.execute(
        "INSERT INTO mask_lifts(camera_id, reason, requisition_id, status, requested_by, "
        "requested_at, duration_s) VALUES(?,?,?,'requested',?,?,?)",
        (camera_id, reason, requisition_id, requested_by, now, duration_s),
    )
    found = lift(conn, int(cur.lastrowid or 0))
    assert found is not None
    return found


def decide(
    conn: sqlite3.Connection, lift_id: int, by: str, approve: bool, now: float
) -> dict[str, Any] | None:
    """Approve (the lift runs from now for its duration) or refuse a pending
    request not made by ``by``; None when it is not pending, or is ``by``'s own."""
    status = "approved" if approve else "refused"
    cur = conn.execute(
        "UPDATE mask_lifts SET status=?, decided_by=?, decided_at=?, "
        "expires_at=CASE WHEN ? THEN ? + duration_s ELSE NULL END "
        "WHERE id=? AND status='requested' AND requested_by<>?",
        (status, by, now, approve, now, lift_id, by),
    )
    return lift(conn, lift_id) if cur.rowcount else None


def end(conn: sqlite3.Connection, lift_id: int, now: float) -> dict[str, Any] | None:
    """End an approved lift early, or withdraw a pending request."""
    cur = conn.execute(
        "UPDATE mask_lifts SET status='ended', ended_at=? "
        "WHERE id=? AND (status='requested' OR (status='approved' AND expires_at>?))",
        (now, lift_id, now),
    )
    return lift(conn, lift_id) if cur.rowcount else None


def expire_due(
    conn: sqlite3.Connection, now: float, request_ttl: float, who: Principal | None = None
) -> list[dict[str, Any]]:
    """Lifts past their end, and requests nobody decided within ``request_ttl``,
    become ``expired`` (in the caller's transaction, each audited as done by
    ``who``); returns them."""
    due = conn.execute(
        f"SELECT {_LIFT_COLUMNS} FROM mask_lifts "
        "WHERE (status='approved' AND expires_at<=?) OR (status='requested' AND requested_at<=?)",
        (now, now - request_ttl),
    ).fetchall()
    for row in due:
        conn.execute(
            "UPDATE mask_lifts SET status='expired', ended_at=? WHERE id=?",
            (row["expires_at"] if row["status"] == "approved" else now, row["id"]),
        )
        if who is not None:
            params = {
                "lift": row["id"],
                "requested_by": row["requested_by"],
                "approved_by": row["decided_by"],
                "lapsed_request": row["status"] == "requested",
            }
            append(conn, Entry(who, "mask.lift.expire", row["camera_id"], params))
    return [lift(conn, row["id"]) or dict(row) for row in due]


def any_due(conn: sqlite3.Connection, now: float, request_ttl: float) -> bool:
    row = conn.execute(
        "SELECT 1 FROM mask_lifts WHERE (status='approved' AND expires_at<=?) "
        "OR (status='requested' AND requested_at<=?) LIMIT 1",
        (now, now - request_ttl),
    ).fetchone()
    return row is not None


def in_force(
    conn: sqlite3.Connection, camera_id: str, now: float, requisition_id: int | None
) -> dict[str, Any] | None:
    """The approved, unexpired lift on ``camera_id`` for that requisition (or, with
    None, for no requisition), the latest approved first."""
    row = conn.execute(
        f"SELECT {_LIFT_COLUMNS} FROM mask_lifts WHERE camera_id=? AND status='approved' "
        "AND expires_at>? AND requisition_id IS ? ORDER BY decided_at DESC LIMIT 1",
        (camera_id, now, requisition_id),
    ).fetchone()
    return None if row is None else dict(row)


class MaskRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def drawn(self, camera_id: str) -> list[dict[str, Any]]:
        """The camera's API-drawn masks in force, oldest first."""
        return await self.db.call(drawn, camera_id)

    async def replace(
        self,
        camera_id: str,
        masks: Sequence[tuple[str, Sequence[tuple[float, float]]]],
        actor: str,
        now: float,
        entry: Entry | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The camera's drawn masks become ``masks`` (name, polygon); returns
        (removed, now in force). ``entry`` is audited with them."""
        if entry is None:
            return await self.db.transaction(replace, camera_id, masks, actor, now)
        return await self.db.transaction(audited, entry, replace, camera_id, masks, actor, now)

    async def lift(self, lift_id: int) -> dict[str, Any] | None:
        return await self.db.call(lift, lift_id)

    async def lifts(
        self,
        camera_ids: Sequence[str] | None = None,
        statuses: Sequence[str] = (),
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Newest first, on those cameras (all with None), at most ``limit``."""
        cameras = None if camera_ids is None else tuple(camera_ids)
        return await self.db.call(lifts, cameras, tuple(statuses), limit)

    async def lift_cameras(self) -> list[str]:
        """The cameras any lift names."""
        return await self.db.call(lift_cameras)

    async def create_lift(
        self,
        camera_id: str,
        reason: str,
        requisition_id: int | None,
        requested_by: str,
        duration_s: float,
        now: float,
        entry: Entry,
    ) -> dict[str, Any]:
        args = (camera_id, reason, requisition_id, requested_by, duration_s, now)
        return await self.db.transaction(audited, entry, create_lift, *args)

    async def decide(
        self, lift_id: int, by: str, approve: bool, now: float, entry: Entry
    ) -> dict[str, Any] | None:
        return await self.db.transaction(audited, entry, decide, lift_id, by, approve, now)

    async def end(self, lift_id: int, now: float, entry: Entry) -> dict[str, Any] | None:
        return await self.db.transaction(audited, entry, end, lift_id, now)

    async def expire_due(
        self, now: float, request_ttl: float, who: Principal
    ) -> list[dict[str, Any]]:
        """Expired lifts, each audited as done by ``who`` (the hub). A read first:
        pictures ask at every use, and nothing is due most of the time."""
        if not await self.db.call(any_due, now, request_ttl):
            return []
        return await self.db.transaction(expire_due, now, request_ttl, who)

    async def in_force(
        self, camera_id: str, now: float, requisition_id: int | None = None
    ) -> dict[str, Any] | None:
        return await self.db.call(in_force, camera_id, now, requisition_id)
