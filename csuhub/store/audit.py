"""The audit trail (append-only, by trigger) and the hub's key-value metadata."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from csuhub.store.records import AuditRecord

if TYPE_CHECKING:
    from csuhub.store.db import Database


def append(
    conn: sqlite3.Connection, actor: str, action: str, target: str | None, payload: str
) -> int:
    cur = conn.execute(
        "INSERT INTO audit_log(ts, actor, action, target, details) VALUES(?,?,?,?,?)",
        (time.time(), actor, action, target, payload),
    )
    return int(cur.lastrowid or 0)


def records(conn: sqlite3.Connection, target: str | None, limit: int) -> list[AuditRecord]:
    if target is None:
        rows = conn.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            "SELECT * FROM audit_log WHERE target=? ORDER BY id DESC LIMIT ?", (target, limit)
        )
    return [
        AuditRecord(
            r["id"], r["ts"], r["actor"], r["action"], r["target"], json.loads(r["details"])
        )
        for r in rows
    ]


def last_target(conn: sqlite3.Connection, action: str) -> str | None:
    row = conn.execute(
        "SELECT target FROM audit_log WHERE action=? ORDER BY id DESC LIMIT 1", (action,)
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self, actor: str, action: str, target: str | None = None, /, **details: Any
    ) -> int:
        """Append a record; returns its id once it is durable."""
        payload = json.dumps(details, sort_keys=True, default=str)
        return await self.db.call(append, actor, action, target, payload)

    async def records(self, *, target: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Newest first."""
        return await self.db.call(records, target, limit)

    async def last_target(self, action: str) -> str | None:
        """The target of the newest record of ``action`` (the name the hub last
        started under is ``last_target("hub.start")``)."""
        return await self.db.call(last_target, action)

    async def get_meta(self, key: str) -> str | None:
        return await self.db.call(get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.call(set_meta, key, value)
