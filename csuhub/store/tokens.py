"""API tokens: only a SHA-256 of each secret is kept.

Every token belongs to an account (``users``). A token made without one gets
a service account of its own, ``token:<name>``, holding the token's role and
the camera scope its creator gives. The CLI and the API give
:func:`csuhub.security.tokens.service_scope` (no camera, but for the legacy
``viewer``); a caller that gives none gets every camera, as migration 8 did for
the tokens made before accounts existed (``StoreFacade.create_token``, which
test suites use, relies on it). Lookups join the account, so a disabled
account's tokens are not found and a role taken from the account is taken
from its tokens.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from csuhub.security.identity import Identity, token_roles
from csuhub.security.tokens import SERVICE_PREFIX
from csuhub.store.audited import Entry, apply
from csuhub.store.records import StoreError

if TYPE_CHECKING:
    from csuhub.store.db import Database

#: the scope of a token's own account when its creator states none
LEGACY_SCOPE = ("*",)


def create(
    conn: sqlite3.Connection,
    name: str,
    role: str,
    secret_hash: str,
    user: str | None,
    scope: list[str] | None = None,
) -> int:
    """In the caller's transaction: the token, and its own service account with
    ``scope`` when it is given none. ``role`` must be one of the account's roles."""
    now = time.time()
    if conn.execute("SELECT 1 FROM api_tokens WHERE name=?", (name,)).fetchone():
        raise StoreError(f"a token named {name!r} already exists")
    if user is None:
        account = SERVICE_PREFIX + name
        chosen = list(LEGACY_SCOPE) if scope is None else scope
        try:
            cur = conn.execute(
                "INSERT INTO users(name, kind, roles, scope, created_at, updated_at)"
                " VALUES(?, 'service', ?, ?, ?, ?)",
                (
                    account,
                    json.dumps([role]),
                    json.dumps(chosen),
                    now,
                    now,
                ),
            )
        except sqlite3.IntegrityError:
            raise StoreError(f"an account named {account!r} already exists") from None
        user_id = int(cur.lastrowid or 0)
    else:
        row = conn.execute(
            "SELECT id, roles, disabled_at FROM users WHERE name=?", (user,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no user named {user!r}")
        if row["disabled_at"] is not None:
            raise StoreError(f"user {user!r} is disabled")
        if role not in json.loads(row["roles"]):
            raise StoreError(f"user {user!r} does not hold role {role!r}")
        user_id = int(row["id"])
    try:
        cur = conn.execute(
            "INSERT INTO api_tokens(name, role, secret_hash, created_at, user_id)"
            " VALUES(?,?,?,?,?)",
            (name, role, secret_hash, now, user_id),
        )
    except sqlite3.IntegrityError:
        raise StoreError(f"a token named {name!r} already exists") from None
    return int(cur.lastrowid or 0)


def identity_by_hash(conn: sqlite3.Connection, secret_hash: str) -> Identity | None:
    row = conn.execute(
        "SELECT t.name AS token, t.role, u.id, u.name, u.kind, u.roles, u.scope"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.secret_hash=? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        (secret_hash,),
    ).fetchone()
    if row is None:
        return None
    return Identity(
        user_id=int(row["id"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        roles=token_roles(str(row["role"]), json.loads(row["roles"])),
        scope=tuple(json.loads(row["scope"])),
        token=str(row["token"]),
    )


def select_all(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT t.name, t.role, u.name AS user, t.created_at, t.revoked_at"
        " FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id ORDER BY t.name"
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

    async def create(
        self,
        name: str,
        role: str,
        secret_hash: str,
        user: str | None = None,
        audit: Entry | None = None,
        *,
        scope: list[str] | None = None,
    ) -> int:
        """A taken name, an unknown or disabled user, or a role the user does
        not hold is a ``StoreError``; ``audit`` commits with the token.
        ``scope``: the camera scope of the token's own account (without
        ``user``; None: every camera)."""
        if user is not None and scope is not None:
            raise StoreError("a token of an account has the account's scope")
        return await self.db.transaction(apply, audit, create, name, role, secret_hash, user, scope)

    async def identity(self, secret_hash: str) -> Identity | None:
        """The account behind an unrevoked token of an active account, or None."""
        return await self.db.call(identity_by_hash, secret_hash)

    async def by_hash(self, secret_hash: str) -> tuple[str, str] | None:
        """``(token name, role)`` while the token works (unrevoked, its account
        active and still holding the role), or None. Only
        ``StoreFacade.token_by_hash`` (and its test) uses it: the web layer
        reads :meth:`identity`."""
        found = await self.identity(secret_hash)
        if found is None or found.token is None or not found.roles:
            return None
        return found.token, found.roles[0]

    async def list(self) -> list[dict[str, Any]]:
        """name, role, user, created_at, revoked_at of each token (never its hash)."""
        return await self.db.call(select_all)

    async def revoke(self, name: str, audit: Entry | None = None) -> bool:
        return await self.db.transaction(apply, audit, revoke, name)
