"""Browser sessions: a new random id at every login, kept server-side, with an
idle and an absolute timeout, and a CSRF token.

The cookie holds 256 random bits; the store keeps only their SHA-256, so a copy
of the database opens no session. The id is made at login and never taken
from the client, so a session cannot be fixed in advance. ``last_seen`` is
written at most every ``touch_every`` seconds (not on every request); the
idle timeout is checked against the newest of the stored and the remembered
value, so it is exact to within that interval.

Unsafe methods (POST, PUT, PATCH, DELETE) authenticated by the cookie must
carry the session's CSRF token in ``X-CSRF-Token`` and, when the browser sends
an ``Origin``, one naming this host. Bearer tokens need neither: a browser
never attaches them by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from csuhub.store.audited import Entry
from csuhub.store.sessions import NewSession, SessionRecord

if TYPE_CHECKING:
    from csuhub.store import Store

#: the cookie's name over plain HTTP, and over TLS (the ``__Host-`` prefix makes
#: browsers refuse it unless Secure, Path=/ and without Domain)
COOKIE = "csuhub_session"
SECURE_COOKIE = "__Host-csuhub_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: float = 15 * 60.0
    #: a shift: past it the person logs in again, however active
    absolute: float = 12 * 3600.0
    touch_every: float = 30.0
    #: "auto": Secure when the request came over TLS; "always": behind a TLS proxy
    secure: str = "auto"

    def __post_init__(self) -> None:
        if not 0 < self.idle <= self.absolute:
            raise ValueError("sessions need 0 < idle <= absolute")
        if self.secure not in ("auto", "always"):
            raise ValueError("session secure is 'auto' or 'always'")


def hash_session_id(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Opened:
    #: the cookie's value, known only to the client from now on
    cookie: str
    record: SessionRecord


class Expired(Exception):
    """A session past its idle or absolute timeout (it has just been ended)."""

    def __init__(self, public_id: str, why: str) -> None:
        super().__init__(why)
        self.public_id = public_id
        self.why = why


class Sessions:
    def __init__(
        self,
        store: Store,
        policy: SessionPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or SessionPolicy()
        self.clock = clock
        #: public id -> the last_seen written (or known) most recently
        self._seen: dict[str, float] = {}

    async def start(
        self,
        user_id: int,
        *,
        source: str | None,
        user_agent: str | None,
        audit: Callable[[str], Entry] | None = None,
    ) -> Opened:
        """A new session with new random values (never the client's); ``audit``
        makes the entry (the login) from its public id, written with it."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        new = NewSession(
            id_hash=hash_session_id(cookie),
            public_id="s-" + secrets.token_urlsafe(9),
            user_id=user_id,
            csrf=secrets.token_urlsafe(32),
            source=source,
            user_agent=(user_agent or "")[:200] or None,
            now=now,
        )
        await self.store.sessions.create(new, audit(new.public_id) if audit else None)
        record = await self.store.sessions.lookup(new.id_hash)
        if record is None:  # the account was disabled in between
            raise Expired(new.public_id, "disabled")
        self._seen[new.public_id] = now
        self._forget_idle(now)
        return Opened(cookie, record)

    def _forget_idle(self, now: float) -> None:
        """Sessions idle past their timeout are over whether or not anyone asks
        again: their remembered activity goes (bounded memory, at each login)."""
        stale = [p for p, seen in self._seen.items() if now - seen > self.policy.idle]
        for public_id in stale:
            del self._seen[public_id]

    async def resolve(self, cookie: str) -> SessionRecord | None:
        """The live session a cookie names, or None (unknown, ended, or its
        account disabled); ``Expired`` when a timeout has just ended it."""
        if not cookie or len(cookie) > 128:
            return None
        record = await self.store.sessions.lookup(hash_session_id(cookie))
        if record is None:
            return None
        now = self.clock()
        last = max(record.last_seen, self._seen.get(record.public_id, 0.0))
        why = None
        if now - record.created_at > self.policy.absolute:
            why = "absolute"
        elif now - last > self.policy.idle:
            why = "idle"
        if why is not None:
            who = record.identity.principal(via=record.public_id, source=None)
            await self.end(
                record.public_id,
                why,
                Entry(who, "session.expired", record.public_id, {"why": why}),
            )
            raise Expired(record.public_id, why)
        if now - last >= self.policy.touch_every:
            await self.store.sessions.touch(record.public_id, now)
            self._seen[record.public_id] = now
        elif record.public_id not in self._seen:
            self._seen[record.public_id] = last
        return record

    async def end(self, public_id: str, why: str, audit: Entry | None = None) -> bool:
        self._seen.pop(public_id, None)
        return await self.store.sessions.end(public_id, self.clock(), why, audit)

    def forget(self, public_ids: list[str]) -> None:
        """Sessions ended elsewhere (a password change) need no touching."""
        for public_id in public_ids:
            self._seen.pop(public_id, None)

    def secure_cookie(self, over_tls: bool) -> bool:
        return over_tls or self.policy.secure == "always"


def csrf_problem(
    method: str,
    record: SessionRecord,
    token: str | None,
    origin: str | None,
    host: str | None,
) -> str | None:
    """Why an unsafe cookie-authenticated request is refused, or None."""
    if method.upper() not in UNSAFE_METHODS:
        return None
    if token is None or not hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), record.csrf.encode("ascii")
    ):
        return f"missing or wrong {CSRF_HEADER}"
    if origin is not None and not origin_matches(origin, host):
        return "the request's Origin is not this hub"
    return None


def origin_matches(origin: str, host: str | None) -> bool:
    """``Origin: scheme://host[:port]`` names the ``Host`` the request came to."""
    if host is None or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
        netloc = parts.netloc
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        return False
    return netloc.lower() == host.lower()
