"""People and service accounts: names, roles, camera scopes, password hashes.

The store keeps what it is given; which roles and scope selectors are valid is
:mod:`csuhub.security.accounts`'s business. Disabling an account ends its
sessions in the same transaction; its tokens stop because every token lookup
reads the account's state (:mod:`csuhub.store.tokens`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.store.audited import Entry, apply
from csuhub.store.records import StoreError

if TYPE_CHECKING:
    from csuhub.store.db import Database

KINDS = ("person", "service")


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    name: str
    kind: str
    roles: tuple[str, ...]
    scope: tuple[str, ...]
    password_hash: str | None
    created_at: float
    updated_at: float
    disabled_at: float | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def public(self) -> dict[str, Any]:
        """What listings show: never the hash."""
        return {
            "name": self.name,
            "kind": self.kind,
            "roles": list(self.roles),
            "scope": list(self.scope),
            "has_password": self.password_hash is not None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "disabled_at": self.disabled_at,
        }


def row_to_user(row: sqlite3.Row) -> UserRow:
    return UserRow(
        id=int(row["id"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        roles=tuple(json.loads(row["roles"])),
        scope=tuple(json.loads(row["scope"])),
        password_hash=row["password_hash"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        disabled_at=row["disabled_at"],
    )


def insert(
    conn: sqlite3.Connection,
    name: str,
    kind: str,
    roles: list[str],
    scope: list[str],
    password_hash: str | None,
    now: float,
) -> int:
    try:
        cur = conn.execute(
            "INSERT INTO users(name, kind, roles, scope, password_hash, password_changed_at,"
            " created_at, updated_at) VALUES(?,?,?,?,?,?,?,?)",
            (
                name,
                kind,
                json.dumps(roles),
                json.dumps(scope),
                password_hash,
                now if password_hash else None,
                now,
                now,
            ),
        )
    except sqlite3.IntegrityError:
        raise StoreError(f"a user named {name!r} already exists") from None
    return int(cur.lastrowid or 0)


def by_name(conn: sqlite3.Connection, name: str) -> UserRow | None:
    row = conn.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
    return None if row is None else row_to_user(row)


def select_all(conn: sqlite3.Connection) -> list[UserRow]:
    return [row_to_user(r) for r in conn.execute("SELECT * FROM users ORDER BY name")]


def count_people(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users WHERE kind='person'").fetchone()[0])


def set_password(
    conn: sqlite3.Connection,
    name: str,
    password_hash: str,
    now: float,
    keep: str | None,
) -> list[str] | bool:
    """Store the hash and end the account's sessions but ``keep`` (in the
    caller's transaction); the ended sessions' public ids, False for no user."""
    row = conn.execute("SELECT id FROM users WHERE name=?", (name,)).fetchone()
    if row is None:
        return False
    conn.execute(
        "UPDATE users SET password_hash=?, password_changed_at=?, updated_at=? WHERE id=?",
        (password_hash, now, now, row[0]),
    )
    ended = conn.execute(
        "UPDATE sessions SET ended_at=?, end_reason='password'"
        " WHERE user_id=? AND ended_at IS NULL AND public_id IS NOT ? RETURNING public_id",
        (now, row[0], keep),
    ).fetchall()
    return sorted(str(r[0]) for r in ended)


def rehash(conn: sqlite3.Connection, name: str, password_hash: str) -> None:
    """The same password under new hashing parameters: nothing else changes."""
    conn.execute("UPDATE users SET password_hash=? WHERE name=?", (password_hash, name))


def set_grants(
    conn: sqlite3.Connection, name: str, roles: list[str], scope: list[str], now: float
) -> bool:
    cur = conn.execute(
        "UPDATE users SET roles=?, scope=?, updated_at=? WHERE name=?",
        (json.dumps(roles), json.dumps(scope), now, name),
    )
    return cur.rowcount > 0


def disable(conn: sqlite3.Connection, name: str, now: float) -> bool:
    """Disable the account and end its sessions (in the caller's transaction)."""
    row = conn.execute(
        "SELECT id FROM users WHERE name=? AND disabled_at IS NULL", (name,)
    ).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE users SET disabled_at=?, updated_at=? WHERE id=?", (now, now, row[0]))
    conn.execute(
        "UPDATE sessions SET ended_at=?, end_reason='disabled'"
        " WHERE user_id=? AND ended_at IS NULL",
        (now, row[0]),
    )
    return True


def enable(conn: sqlite3.Connection, name: str, now: float) -> bool:
    cur = conn.execute(
        "UPDATE users SET disabled_at=NULL, updated_at=? WHERE name=? AND disabled_at IS NOT NULL",
        (now, name),
    )
    return cur.rowcount > 0


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        name: str,
        *,
        kind: str,
        roles: list[str],
        scope: list[str],
        password_hash: str | None,
        now: float,
        audit: Entry | None = None,
    ) -> int:
        """A taken name is a ``StoreError``; ``audit`` commits with the account."""
        if kind not in KINDS:
            raise StoreError(f"unknown account kind {kind!r}")
        return await self.db.transaction(
            apply, audit, insert, name, kind, roles, scope, password_hash, now
        )

    async def get(self, name: str) -> UserRow | None:
        return await self.db.call(by_name, name)

    async def list(self) -> list[UserRow]:
        return await self.db.call(select_all)

    async def people(self) -> int:
        """How many person accounts exist (the demo makes its first admin at 0)."""
        return await self.db.call(count_people)

    async def set_password(
        self,
        name: str,
        password_hash: str,
        now: float,
        *,
        keep: str | None = None,
        audit: Entry | None = None,
    ) -> list[str] | None:
        """Set the hash and end the account's sessions but ``keep``, with the
        audit entry, at once; the ended sessions (None: no such account)."""
        ended = await self.db.transaction(
            apply, audit, set_password, name, password_hash, now, keep
        )
        return None if ended is False else list(ended)  # type: ignore[arg-type]

    async def rehash(self, name: str, password_hash: str) -> None:
        await self.db.call(rehash, name, password_hash)

    async def set_grants(
        self, name: str, roles: list[str], scope: list[str], now: float, audit: Entry | None = None
    ) -> bool:
        return await self.db.transaction(apply, audit, set_grants, name, roles, scope, now)

    async def disable(self, name: str, now: float, audit: Entry | None = None) -> bool:
        """Disable the account and end its sessions, with the audit entry, at once."""
        return await self.db.transaction(apply, audit, disable, name, now)

    async def enable(self, name: str, now: float, audit: Entry | None = None) -> bool:
        return await self.db.transaction(apply, audit, enable, name, now)
