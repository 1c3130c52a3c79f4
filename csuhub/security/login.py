"""A person's login, logout and password change, with lockout and audit.

Every attempt costs one argon2 verification whatever happens (locked, unknown
name, service account, wrong or right password), so the time an answer takes
tells nothing about which it was. Every failure, lock, login and logout is
audited with the name tried and the client address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from csuhub.security.accounts import record
from csuhub.security.lockout import Lockout, LockoutPolicy
from csuhub.security.passwords import (
    HASHER,
    WeakPassword,
    dummy_verify,
    hash_password,
    verify_password,
)
from csuhub.security.permissions import Principal
from csuhub.security.sessions import Opened, SessionPolicy, Sessions
from csuhub.store.audited import Entry

if TYPE_CHECKING:
    from csuhub.store import Store
    from csuhub.store.lockout import Counter
    from csuhub.store.sessions import SessionRecord
    from csuhub.store.users import UserRow

#: the answer to every refused login, whatever the cause (unknown name, wrong
#: password, disabled account): which one it was is for the audit, not the client
BAD_CREDENTIALS = "wrong user name or password"


class LoginRefused(Exception):
    def __init__(self, message: str, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def attempt_principal(name: str, source: str | None, via: str | None = None) -> Principal:
    """Who the audit names for an attempt: the name tried, with no rights."""
    return Principal(
        name=name, kind="user", roles=(), permissions=frozenset(), via=via, source=source
    )


@dataclass(frozen=True, slots=True)
class LoggedIn:
    opened: Opened
    user: UserRow


class Logins:
    def __init__(
        self,
        store: Store,
        sessions: SessionPolicy | None = None,
        lockout: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sessions = Sessions(store, sessions, clock)
        self.lockout = Lockout(store, lockout, clock)

    @property
    def clock(self) -> Callable[[], float]:
        return self.sessions.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        """Tests move time for sessions and lockout together."""
        self.sessions.clock = clock
        self.lockout.clock = clock

    async def login(
        self, name: str, password: str, *, source: str | None, user_agent: str | None
    ) -> LoggedIn:
        who = attempt_principal(name, source)
        wait = await self.lockout.retry_after(name, source)
        if wait > 0:
            dummy_verify(password)  # a lock costs what a check costs
            await record(self.store, who, "login.failed", name, outcome="refused", why="locked")
            raise LoginRefused("too many failed logins; try again later", retry_after=wait)
        user = await self.store.users.get(name)
        usable = user is not None and user.kind == "person" and user.active
        check = verify_password(user.password_hash if usable and user else None, password)
        if not (usable and check.ok) or user is None:
            await self._failed(who, name, source, user)
            raise LoginRefused(BAD_CREDENTIALS)
        if check.needs_rehash:  # parameters raised since: store the new hash
            await self.store.users.rehash(name, HASHER.hash(password))
        await self.lockout.succeeded(name)

        def entry(public_id: str) -> Entry:
            who = attempt_principal(name, source, public_id)
            params = {"roles": list(user.roles), "rehashed": check.needs_rehash}
            return Entry(replace(who, roles=user.roles), "login", name, params)

        opened = await self.sessions.start(
            user.id, source=source, user_agent=user_agent, audit=entry
        )
        return LoggedIn(opened, user)

    async def _failed(
        self, who: Principal, name: str, source: str | None, user: UserRow | None
    ) -> None:
        why = (
            "unknown user"
            if user is None
            else "service account"
            if user.kind != "person"
            else "disabled"
            if not user.active
            else "wrong password"
        )

        def locked(counter: Counter) -> Entry:
            params = {
                "failures": counter.failures,
                "seconds": round(counter.locked_until - counter.last_failure, 3),
                "until": counter.locked_until,
            }
            return Entry(who, "login.locked", counter.key, params)

        failure = Entry(who, "login.failed", name, {"why": why}, outcome="refused")
        await self.lockout.failed(name, source, audit=failure, lock_audit=locked)

    async def logout(self, session: SessionRecord, source: str | None) -> None:
        who = session.identity.principal(via=session.public_id, source=source)
        await self.sessions.end(
            session.public_id, "logout", Entry(who, "logout", session.identity.name)
        )

    async def change_password(
        self,
        name: str,
        current: str,
        new: str,
        *,
        source: str | None,
        session: SessionRecord | None = None,
    ) -> list[str]:
        """Check ``current`` as a login would (locks and failures count), store
        ``new``, end the person's sessions but ``session``; their public ids."""
        via = session.public_id if session else None
        who = attempt_principal(name, source, via)
        wait = await self.lockout.retry_after(name, source)
        if wait > 0:
            dummy_verify(current)
            await record(self.store, who, "user.passwd", name, outcome="refused", why="locked")
            raise LoginRefused("too many failed logins; try again later", retry_after=wait)
        user = await self.store.users.get(name)
        usable = user is not None and user.kind == "person" and user.active
        check = verify_password(user.password_hash if usable and user else None, current)
        if not (usable and check.ok) or user is None:
            failure = Entry(who, "user.passwd", name, {"why": "current"}, outcome="refused")
            await self.lockout.failed(name, source, audit=failure)
            raise LoginRefused(BAD_CREDENTIALS)
        try:
            new_hash = hash_password(new)
        except WeakPassword as err:
            await record(self.store, who, "user.passwd", name, outcome="refused", why=str(err))
            raise
        ended = await self.store.users.set_password(
            name,
            new_hash,
            self.clock(),
            keep=via,
            audit=Entry(who, "user.passwd", name, result_as="sessions_ended"),
        )
        await self.lockout.succeeded(name)
        self.sessions.forget(ended or [])
        return ended or []
