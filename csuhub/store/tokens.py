"""API tokens: only a SHA-256 of each secret is kept."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from csuhub.store.records import StoreError

if TYPE_CHECKING:
    from csuhub.store.db import Database


def create(conn: sqlite3.Connection, name: str, role: str, secret_hash: str) -> int:
    try:
        cur = conn.execute(
            "INSERT INTO api_tokens(name, role, secret_hash, created_at) VALUES(?,?,?,?)",
            (name, role, secret_hash, time.time()),
        )
    except sqlite3.IntegrityError:
        raise StoreError(f"a token named {name!r} already exists") from None
    return int(cur.lastrowid or 0)


def by_hash(conn: sqlite3.Connection, secret_hash: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT name, role FROM api_tokens WHERE secret_hash=? AND revoked_at IS NULL",
        (secret_hash,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def select_all(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name"
    ).fetchall()
    return [dict(r) for r in rows]


def revoke(conn: sqlite3.Connection, name: str) -> bool:
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at=? WHERE name=? AND revoked_at IS NULL",
        (time.time(), name),
    )
    return cur.rowcount > 0


class TokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, role: str, secret_hash: str) -> int:
        """A taken name is a ``StoreError``."""
        return await self.db.call(create, name, role, secret_hash)

    async def by_hash(self, secret_hash: str) -> tuple[str, str] | None:
        """``(name, role)`` of an unrevoked token, or None."""
        return await self.db.call(by_hash, secret_hash)

    async def list(self) -> list[dict[str, Any]]:
        """name, role, created_at, revoked_at of each token (never its hash)."""
        return await self.db.call(select_all)

    async def revoke(self, name: str) -> bool:
        return await self.db.call(revoke, name)
