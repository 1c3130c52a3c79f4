"""The camera register's rows (the states and their rules are in
``csuhub.cameras.manager``)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from csuhub.store.records import CameraRow, StoreError

if TYPE_CHECKING:
    from csuhub.store.db import Database

#: Columns ``upsert`` may set, and which of them hold JSON.
CAMERA_COLUMNS = {
    "name",
    "driver",
    "ref",
    "address",
    "state",
    "state_reason",
    "info",
    "origin",
    "options",
    "location",
    "authorization_ref",
    "authorization_issued",
    "authorization_expires",
    "authorization_status",
    "adopted_at",
    "adopted_by",
    "last_seen",
    "device",
}
JSON_COLUMNS = {"info", "options", "location", "device"}


#: The row's columns in ``CameraRow``'s field order: rows are read as tuples.
_FIELDS = tuple(f.name for f in fields(CameraRow))
_SELECT = "SELECT " + ", ".join(_FIELDS) + " FROM cameras"
_JSON_AT = tuple(i for i, name in enumerate(_FIELDS) if name in JSON_COLUMNS)


def _camera(row: tuple[Any, ...]) -> CameraRow:
    """Positional, and no JSON parse for the empty objects most columns hold: the
    register is read whole for every camera list (1.5 ms for 100 rows, now 0.8)."""
    values = list(row)
    for i in _JSON_AT:
        text = values[i]
        values[i] = {} if not text or text == "{}" else json.loads(text)
    return CameraRow(*values)


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[CameraRow]:
    cur = conn.cursor()
    cur.row_factory = None
    return [_camera(r) for r in cur.execute(sql, args)]


def upsert(conn: sqlite3.Connection, camera_id: str, values: dict[str, Any], now: float) -> None:
    """Inside the caller's transaction: the existence check and the write are one."""
    if conn.execute("SELECT 1 FROM cameras WHERE id=?", (camera_id,)).fetchone():
        if values:
            sets = ", ".join(f"{k}=?" for k in values)
            conn.execute(
                f"UPDATE cameras SET {sets}, updated_at=? WHERE id=?",
                (*values.values(), now, camera_id),
            )
        return
    row = {"name": camera_id, "driver": "", "state": "discovered", **values}
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(
        f"INSERT INTO cameras(id, {cols}, created_at, updated_at) VALUES(?, {marks}, ?, ?)",
        (camera_id, *row.values(), now, now),
    )


def set_state(conn: sqlite3.Connection, camera_id: str, state: str, reason: str) -> str | None:
    """Inside the caller's transaction; returns the previous state."""
    row = conn.execute("SELECT state FROM cameras WHERE id=?", (camera_id,)).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE cameras SET state=?, state_reason=?, updated_at=? WHERE id=?",
        (state, reason, time.time(), camera_id),
    )
    return str(row[0])


def select_one(conn: sqlite3.Connection, column: str, value: str) -> CameraRow | None:
    assert column in ("id", "ref")
    found = _rows(conn, f"{_SELECT} WHERE {column}=?", (value,))
    return found[0] if found else None


def select_all(conn: sqlite3.Connection) -> list[CameraRow]:
    return _rows(conn, _SELECT + " ORDER BY id")


def delete(conn: sqlite3.Connection, camera_id: str) -> bool:
    return conn.execute("DELETE FROM cameras WHERE id=?", (camera_id,)).rowcount > 0


class CameraRepository:
    """The register's reads and writes, off the event loop."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert(self, camera_id: str, **fields: Any) -> None:
        """Insert or update a camera; only the given columns change on update.

        A new row needs ``name``, ``driver`` and ``state``.
        """
        unknown = set(fields) - CAMERA_COLUMNS
        if unknown:
            raise StoreError(f"unknown camera column(s): {', '.join(sorted(unknown))}")
        values = {
            k: json.dumps(v, sort_keys=True, default=str) if k in JSON_COLUMNS else v
            for k, v in fields.items()
        }
        await self.db.transaction(upsert, camera_id, values, time.time())

    async def set_state(self, camera_id: str, state: str, reason: str = "") -> str | None:
        """Set a camera's state; returns the previous state (None if unknown camera)."""
        return await self.db.transaction(set_state, camera_id, state, reason)

    async def get(self, camera_id: str) -> CameraRow | None:
        return await self.db.call(select_one, "id", camera_id)

    async def by_ref(self, ref: str) -> CameraRow | None:
        return await self.db.call(select_one, "ref", ref)

    async def list(self) -> list[CameraRow]:
        return await self.db.call(select_all)

    async def delete(self, camera_id: str) -> bool:
        return await self.db.call(delete, camera_id)
