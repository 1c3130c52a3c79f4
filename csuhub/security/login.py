"""A person's login, logout and password change, with lockout and audit.

Every attempt costs one argon2 verification whatever happens (locked, unknown
name, service account, wrong or right password), so the time an answer takes
tells nothing about which it was. The verification runs in a worker thread
behind :class:`~csuhub.security.passwords.HashGate` (a flood is refused with
``Busy`` before any hashing), and attempts on one account run one after the
other (:class:`~csuhub.security.lockout.AttemptLocks`): thirty guesses sent at
once are checked against the lock one by one, so no more than the threshold is
ever verified.

Every failure, lock, login and logout is audited with the client address. A
name that is no account is not written as typed (a password typed in the name
field would live in the undeletable audit): it is ``unknown:<keyed hash>``,
the same for the same name, so repeated tries still show.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from csuhub.security.accounts import normalize_name, record
from csuhub.security.lockout import AttemptLocks, Lockout, LockoutPolicy, account_key
from csuhub.security.passwords import HASHER, HashGate, WeakPassword
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
LOCKED = "too many failed logins; try again later"
#: meta key of the random key that hashes unknown names for the audit
NAME_KEY = "login.unknown_name_key"


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


@dataclass(frozen=True, slots=True)
class _Attempt:
    """An attempt's account (None: no such name) and how the audit names it."""

    name: str
    user: UserRow | None
    label: str

    @property
    def usable(self) -> bool:
        return self.user is not None and self.user.kind == "person" and self.user.active

    @property
    def why(self) -> str:
        user = self.user
        if user is None:
            return "unknown user"
        if user.kind != "person":
            return "service account"
        return "disabled" if not user.active else "wrong password"


class Logins:
    def __init__(
        self,
        store: Store,
        sessions: SessionPolicy | None = None,
        lockout: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
        gate: HashGate | None = None,
    ) -> None:
        self.store = store
        self.sessions = Sessions(store, sessions, clock)
        self.lockout = Lockout(store, lockout, clock)
        self.gate = gate or HashGate()
        self.attempts = AttemptLocks()
        self._name_key: bytes | None = None
        self._name_key_made = asyncio.Lock()

    @property
    def clock(self) -> Callable[[], float]:
        return self.sessions.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        """Tests move time for sessions and lockout together."""
        self.sessions.clock = clock
        self.lockout.clock = clock

    async def _attempt(self, name: str) -> _Attempt:
        user = await self.store.users.get(name)
        return _Attempt(name, user, name if user is not None else await self.unknown_label(name))

    async def unknown_label(self, name: str) -> str:
        """``unknown:<16 hex>``: an HMAC of the name under a key kept in the
        store's meta (made once), so a copy of the audit alone cannot test guesses."""
        async with self._name_key_made:  # two first attempts make one key
            if self._name_key is None:
                stored = await self.store.get_meta(NAME_KEY)
                if stored is None:
                    stored = secrets.token_hex(32)
                    await self.store.set_meta(NAME_KEY, stored)
                self._name_key = bytes.fromhex(stored)
        digest = hmac.new(self._name_key, name.encode("utf-8", "replace"), hashlib.sha256)
        return "unknown:" + digest.hexdigest()[:16]

    async def _refuse_if_locked(
        self, attempt: _Attempt, who: Principal, action: str, secret: str, source: str | None
    ) -> None:
        """A lock refuses at once (after a check's worth of hashing); the audit
        gets one entry per lock period, the refusals after it are counted."""
        lock = await self.lockout.lock(attempt.name, source)
        if lock is None:
            return
        await self.gate.dummy_verify(secret)  # a lock costs what a check costs
        earlier = self.lockout.first_refusal(lock)
        if earlier is not None:
            await record(
                self.store,
                who,
                action,
                attempt.label,
                outcome="refused",
                why="locked",
                until=lock.locked_until,
                refused_in_earlier_locks=earlier,
            )
        raise LoginRefused(LOCKED, retry_after=lock.locked_until - self.clock())

    async def login(
        self, name: str, password: str, *, source: str | None, user_agent: str | None
    ) -> LoggedIn:
        name = normalize_name(name)
        async with self.attempts.hold(account_key(name)):
            attempt = await self._attempt(name)
            who = attempt_principal(attempt.label, source)
            await self._refuse_if_locked(attempt, who, "login.failed", password, source)
            user = attempt.user
            check = await self.gate.verify(
                user.password_hash if attempt.usable and user else None, password
            )
            if not (attempt.usable and check.ok) or user is None:
                await self._failed(who, attempt, source)
                raise LoginRefused(BAD_CREDENTIALS)
            if check.needs_rehash:  # parameters raised since: store the new hash
                await self.store.users.rehash(name, await self.gate.run(HASHER.hash, password))
            await self.lockout.succeeded(name)

        def entry(public_id: str) -> Entry:
            who = attempt_principal(name, source, public_id)
            params = {"roles": list(user.roles), "rehashed": check.needs_rehash}
            return Entry(replace(who, roles=user.roles), "login", name, params)

        opened = await self.sessions.start(
            user.id, source=source, user_agent=user_agent, audit=entry
        )
        return LoggedIn(opened, user)

    async def _failed(self, who: Principal, attempt: _Attempt, source: str | None) -> None:
        def locked(counter: Counter) -> Entry:
            params = {
                "failures": counter.failures,
                "seconds": round(counter.locked_until - counter.last_failure, 3),
                "until": counter.locked_until,
            }
            target = counter.key
            if target == account_key(attempt.name):
                target = account_key(attempt.label)
            return Entry(who, "login.locked", target, params)

        failure = Entry(who, "login.failed", attempt.label, {"why": attempt.why}, outcome="refused")
        await self.lockout.failed(attempt.name, source, audit=failure, lock_audit=locked)

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
        name = normalize_name(name)
        via = session.public_id if session else None
        async with self.attempts.hold(account_key(name)):
            attempt = await self._attempt(name)
            who = attempt_principal(attempt.label, source, via)
            await self._refuse_if_locked(attempt, who, "user.passwd", current, source)
            user = attempt.user
            check = await self.gate.verify(
                user.password_hash if attempt.usable and user else None, current
            )
            if not (attempt.usable and check.ok) or user is None:
                failure = Entry(
                    who, "user.passwd", attempt.label, {"why": "current"}, outcome="refused"
                )
                await self.lockout.failed(name, source, audit=failure)
                raise LoginRefused(BAD_CREDENTIALS)
            await self.lockout.succeeded(name)
        try:
            new_hash = await self.gate.hash(new)
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
        self.sessions.forget(ended or [])
        return ended or []
