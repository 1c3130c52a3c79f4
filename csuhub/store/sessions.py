"""Server-side browser sessions: the cookie's secret is never stored, only its
SHA-256 (``id``); ``public_id`` names a session in the audit and in listings.

A session is found together with its account, so a disabled account's
sessions stop at once; timeouts are the caller's (:mod:`csuhub.security.sessions`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.security.identity import Identity
from csuhub.store.audited import Entry, apply

if TYPE_CHECKING:
    from csuhub.store.db import Database


@dataclass(frozen=True, slots=True)
class SessionRecord:
    public_id: str
    csrf: str
    source: str | None
    created_at: float
    last_seen: float
    identity: Identity


@dataclass(frozen=True, slots=True)
class NewSession:
    id_hash: str
    public_id: str
    user_id: int
    csrf: str
    source: str | None
    user_agent: str | None
    now: float


def insert(conn: sqlite3.Connection, new: NewSession) -> None:
    conn.execute(
        "INSERT INTO sessions(id, public_id, user_id, csrf, source, user_agent, created_at,"
        " last_seen) VALUES(?,?,?,?,?,?,?,?)",
        (
            new.id_hash,
            new.public_id,
            new.user_id,
            new.csrf,
            new.source,
            new.user_agent,
            new.now,
            new.now,
        ),
    )


def lookup(conn: sqlite3.Connection, id_hash: str) -> SessionRecord | None:
    row = conn.execute(
        "SELECT s.public_id, s.csrf, s.source, s.created_at, s.last_seen,"
        " u.id, u.name, u.kind, u.roles, u.scope"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id=? AND s.ended_at IS NULL AND u.disabled_at IS NULL",
        (id_hash,),
    ).fetchone()
    if row is None:
        return None
    return SessionRecord(
        public_id=str(row["public_id"]),
        csrf=str(row["csrf"]),
        source=row["source"],
        created_at=float(row["created_at"]),
        last_seen=float(row["last_seen"]),
        identity=Identity(
            user_id=int(row["id"]),
            name=str(row["name"]),
            kind=str(row["kind"]),
            roles=tuple(json.loads(row["roles"])),
            scope=tuple(json.loads(row["scope"])),
        ),
    )


def touch(conn: sqlite3.Connection, public_id: str, now: float) -> None:
    conn.execute(
        "UPDATE sessions SET last_seen=max(last_seen, ?) WHERE public_id=? AND ended_at IS NULL",
        (now, public_id),
    )


def end(conn: sqlite3.Connection, public_id: str, now: float, reason: str) -> bool:
    cur = conn.execute(
        "UPDATE sessions SET ended_at=?, end_reason=? WHERE public_id=? AND ended_at IS NULL",
        (now, reason, public_id),
    )
    return cur.rowcount > 0


def select(conn: sqlite3.Connection, user: str | None, active: bool) -> list[dict[str, Any]]:
    where, args = [], []
    if user is not None:
        where.append("u.name=?")
        args.append(user)
    if active:
        where.append("s.ended_at IS NULL")
    sql = (
        "SELECT s.public_id, u.name AS user, s.source, s.user_agent, s.created_at,"
        " s.last_seen, s.ended_at, s.end_reason FROM sessions s JOIN users u ON u.id=s.user_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY s.created_at"
    )
    return [dict(r) for r in conn.execute(sql, args)]


class SessionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, new: NewSession, audit: Entry | None = None) -> None:
        """The session and its audit entry (the login) commit together."""
        await self.db.transaction(apply, audit, insert, new)

    async def lookup(self, id_hash: str) -> SessionRecord | None:
        """An unended session of an active account, or None."""
        return await self.db.call(lookup, id_hash)

    async def touch(self, public_id: str, now: float) -> None:
        await self.db.call(touch, public_id, now)

    async def end(
        self, public_id: str, now: float, reason: str, audit: Entry | None = None
    ) -> bool:
        """End a live session (False: none); ``audit`` is written only if it was live."""
        return await self.db.transaction(apply, audit, end, public_id, now, reason)

    async def list(self, *, user: str | None = None, active: bool = True) -> list[dict[str, Any]]:
        """Sessions (never their secret or CSRF token), oldest first."""
        return await self.db.call(select, user, active)
