"""The register of requisitions and extractions (SQL only; the workflow is in
``csuhub.requisitions``)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from csuhub.store.audited import Entry, append
from csuhub.store.holds import LEGAL, place_holds

if TYPE_CHECKING:
    from csuhub.store.db import Database

COLUMNS = (
    "id",
    "reference",
    "service",
    "officer",
    "legal_frame",
    "reason",
    "start",
    "end",
    "cameras",
    "status",
    "outcome",
    "scope",
    "created_at",
    "created_by",
    "updated_at",
    "delivered_to",
    "closed_at",
)


class DuplicateReference(Exception):
    pass


def _requisition(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["cameras"] = json.loads(data["cameras"])
    data["scope"] = json.loads(data["scope"] or "{}")
    return data


def create(
    conn: sqlite3.Connection, fields: dict[str, Any], actor: str, entry: Entry | None = None
) -> tuple[int, dict[str, Any]]:
    """The requisition, its holds and (with ``entry``) its audit entry, which
    learns the new id and how much is held."""
    now = time.time()
    try:
        cur = conn.execute(
            "INSERT INTO requisitions(reference, service, officer, legal_frame, "
            "reason, start, end, cameras, status, created_at, created_by, "
            "updated_at) VALUES(?,?,?,?,?,?,?,?,'requested',?,?,?)",
            (
                fields["reference"],
                fields["service"],
                fields["officer"],
                fields["legal_frame"],
                fields["reason"],
                fields["start"],
                fields["end"],
                json.dumps(fields["cameras"]),
                now,
                actor,
                now,
            ),
        )
    except sqlite3.IntegrityError:
        raise DuplicateReference(fields["reference"]) from None
    req_id = int(cur.lastrowid or 0)
    held = place_holds(
        conn,
        fields["cameras"],
        fields["start"],
        fields["end"],
        level=LEGAL,
        kind="requisition",
        ref=str(req_id),
        reason=f"requisition {fields['reference']}",
        actor=actor,
    )
    conn.execute("UPDATE requisitions SET status='held', updated_at=? WHERE id=?", (now, req_id))
    if entry is not None:
        params = {**entry.params, "held_segments": sum(h["segments"] for h in held.values())}
        append(conn, replace(entry, target=f"requisition:{req_id}", params=params))
    return req_id, held


def set_scope(conn: sqlite3.Connection, req_id: int, scope: dict[str, Any]) -> None:
    conn.execute("UPDATE requisitions SET scope=? WHERE id=?", (json.dumps(scope), req_id))


def select_by_id(conn: sqlite3.Connection, req_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM requisitions WHERE id=?", (req_id,)).fetchone()
    return None if row is None else _requisition(row)


def select_by_reference(conn: sqlite3.Connection, reference: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM requisitions WHERE reference=?", (reference,)).fetchone()
    return None if row is None else _requisition(row)


def select_all(conn: sqlite3.Connection, status: str | None) -> list[dict[str, Any]]:
    if status is None:
        rows = conn.execute("SELECT * FROM requisitions ORDER BY id")
    else:
        rows = conn.execute("SELECT * FROM requisitions WHERE status=? ORDER BY id", (status,))
    return [_requisition(r) for r in rows]


def transition(
    conn: sqlite3.Connection,
    req_id: int,
    allowed_from: tuple[str, ...],
    status: str,
    fields: dict[str, Any],
    entry: Entry | None = None,
) -> bool:
    """``fields`` are checked against ``COLUMNS`` by the caller; ``entry`` is
    written with the change, and only if it happened."""
    sets = "".join(f", {key}=?" for key in fields)
    marks = ",".join("?" * len(allowed_from))
    cur = conn.execute(
        f"UPDATE requisitions SET status=?, updated_at=?{sets} WHERE id=? AND status IN ({marks})",
        (status, time.time(), *fields.values(), req_id, *allowed_from),
    )
    if cur.rowcount > 0 and entry is not None:
        append(conn, entry)
    return cur.rowcount > 0


def add_extraction(conn: sqlite3.Connection, fields: dict[str, Any]) -> int:
    cur = conn.execute(
        "INSERT INTO extractions(requisition_id, camera_id, start, end, seconds, file, "
        "sha256, size, created_at, created_by) VALUES(:requisition_id, :camera_id, "
        ":start, :end, :seconds, :file, :sha256, :size, :created_at, :created_by)",
        {"created_at": time.time(), **fields},
    )
    return int(cur.lastrowid or 0)


def select_extractions(conn: sqlite3.Connection, req_id: int | None) -> list[dict[str, Any]]:
    if req_id is None:
        rows = conn.execute("SELECT * FROM extractions ORDER BY id")
    else:
        rows = conn.execute(
            "SELECT * FROM extractions WHERE requisition_id=? ORDER BY id", (req_id,)
        )
    return [dict(r) for r in rows]


def coverage(
    conn: sqlite3.Connection, camera_id: str, start: float, end: float
) -> list[tuple[float, float, bool]]:
    return [
        (r[0], r[1], r[2] == "ok" and r[3] is None)
        for r in conn.execute(
            "SELECT start, end, status, sweep_id FROM segments WHERE camera_id=? "
            "AND end > ? AND start < ? ORDER BY start",
            (camera_id, start, end),
        )
    ]


def stats(conn: sqlite3.Connection) -> dict[str, Any]:
    months: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        "SELECT strftime('%Y-%m', created_at, 'unixepoch') AS month, legal_frame, "
        "status, outcome, COUNT(*) FROM requisitions GROUP BY 1, 2, 3, 4"
    ):
        entry = months.setdefault(
            r[0],
            {
                "requisitions": 0,
                "by_frame": {},
                "closed": 0,
                "outcomes": {"helped": 0, "not_helped": 0, "unknown": 0},
                "exports": 0,
                "exported_seconds": 0.0,
            },
        )
        entry["requisitions"] += r[4]
        entry["by_frame"][r[1]] = entry["by_frame"].get(r[1], 0) + r[4]
        if r[2] == "closed":
            entry["closed"] += r[4]
            entry["outcomes"][r[3] or "unknown"] += r[4]
    for r in conn.execute(
        "SELECT strftime('%Y-%m', created_at, 'unixepoch'), COUNT(*), SUM(seconds) "
        "FROM extractions GROUP BY 1"
    ):
        if r[0] in months:
            months[r[0]]["exports"] = r[1]
            months[r[0]]["exported_seconds"] = r[2] or 0.0
    held = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(duration), 0) "
        "FROM segments WHERE hold = 2"
    ).fetchone()
    total = sum(m["requisitions"] for m in months.values())
    closed = sum(m["closed"] for m in months.values())
    outcomes = {
        key: sum(m["outcomes"][key] for m in months.values())
        for key in ("helped", "not_helped", "unknown")
    }
    return {
        "months": dict(sorted(months.items())),
        "total": {
            "requisitions": total,
            "closed": closed,
            "open": total - closed,
            "outcomes": outcomes,
            "helped_rate": (outcomes["helped"] / closed) if closed else None,
            "exports": sum(m["exports"] for m in months.values()),
        },
        "held": {"segments": held[0], "bytes": held[1], "seconds": held[2]},
    }


class RequisitionStore:
    """The register's repository, off the event loop."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, fields: dict[str, Any], actor: str, entry: Entry | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Register the requisition, hold its scope and audit it in one transaction:
        there is no instant at which a registered requisition's footage is unheld,
        or at which it exists unaudited."""
        return await self.db.transaction(create, fields, actor, entry)

    async def set_scope(self, req_id: int, scope: dict[str, Any]) -> None:
        await self.db.call(set_scope, req_id, scope)

    async def get(self, req_id: int) -> dict[str, Any] | None:
        return await self.db.call(select_by_id, req_id)

    async def by_reference(self, reference: str) -> dict[str, Any] | None:
        return await self.db.call(select_by_reference, reference)

    async def list(self, status: str | None = None) -> list[dict[str, Any]]:
        return await self.db.call(select_all, status)

    async def transition(
        self,
        req_id: int,
        allowed_from: tuple[str, ...],
        status: str,
        *,
        entry: Entry | None = None,
        **fields: Any,
    ) -> bool:
        """Move to ``status`` only from one of ``allowed_from`` (checked in SQL, so two
        clients cannot both close the same requisition)."""
        for key in fields:
            if key not in COLUMNS:
                raise ValueError(f"unknown requisition column {key!r}")
        return await self.db.transaction(transition, req_id, allowed_from, status, fields, entry)

    async def add_extraction(self, **fields: Any) -> int:
        return await self.db.call(add_extraction, fields)

    async def extractions(self, req_id: int | None = None) -> list[dict[str, Any]]:
        return await self.db.call(select_extractions, req_id)

    async def coverage(
        self, camera_id: str, start: float, end: float
    ) -> list[tuple[float, float, bool]]:
        """(start, end, still there) for each indexed segment overlapping the range;
        a segment a sweep has marked is as good as destroyed."""
        return await self.db.call(coverage, camera_id, start, end)

    async def stats(self) -> dict[str, Any]:
        """Aggregates for the ethics committee: counts and volumes, no footage."""
        return await self.db.call(stats)
