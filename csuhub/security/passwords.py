"""Password hashing (argon2id) and the passwords the hub generates.

The parameters are stated here rather than taken from argon2-cffi's defaults,
so that a library upgrade cannot silently change them: RFC 9106's second
recommended profile (argon2id, 3 passes over 64 MiB, 4 lanes, a 16-byte salt
and a 32-byte tag), about 50-100 ms per check on the hub's hardware. A hash
made with other parameters still verifies, and is replaced at the next
successful login (``needs_rehash``), so raising them later is one edit here.

A login for a name that does not exist still costs one verification (against
a hash of a random password, made once), so the time a refusal takes does not
say whether the name is known.

Each hash or check takes ~150 ms of CPU and 64 MiB: run on the event loop, a
score of anonymous logins would stall every request, segment and PTZ stop of
the hub. :class:`HashGate` runs them in worker threads, a few at a time, and
refuses (:class:`Busy`) beyond a short queue *before* hashing, so a flood
costs the hub a bounded amount of work and memory.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 3
MEMORY_COST_KIB = 64 * 1024
PARALLELISM = 4
HASH_LEN = 32
SALT_LEN = 16

#: shorter is refused; longer than the maximum is refused before any hashing
MIN_LENGTH = 12
MAX_LENGTH = 1024

HASHER = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
    hash_len=HASH_LEN,
    salt_len=SALT_LEN,
)


_T = TypeVar("_T")


class WeakPassword(ValueError):
    """A new password the hub will not accept (the message says why)."""


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    #: the stored hash was made with other parameters: store ``hash_password`` anew
    needs_rehash: bool = False


def check_new_password(password: str) -> str:
    """A password a person chose, refused when too short or too long to hash."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if not password.isprintable():
        raise WeakPassword("a password holds no control characters")
    return password


def hash_password(password: str) -> str:
    return HASHER.hash(check_new_password(password))


def generate_password() -> str:
    """A random password (144 bits, 24 URL-safe characters), shown once."""
    return secrets.token_urlsafe(18)


def verify_password(stored: str | None, password: str) -> Check:
    """Whether ``password`` matches ``stored``; a missing or unreadable hash
    (a service account, a damaged row) costs a verification and fails."""
    if stored is None or len(password) > MAX_LENGTH:
        dummy_verify(password)
        return Check(False)
    try:
        HASHER.verify(stored, password)
    except VerifyMismatchError:
        return Check(False)
    except (VerificationError, InvalidHashError):
        dummy_verify(password)
        return Check(False)
    return Check(True, HASHER.check_needs_rehash(stored))


def dummy_verify(password: str) -> None:
    """Spend what a real verification spends, for a name that has no hash."""
    try:
        HASHER.verify(_dummy_hash(), password[:MAX_LENGTH])
    except VerificationError:
        pass


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(18))


class Busy(Exception):
    """Too many password checks are already running or queued: try again later."""

    def __init__(self, retry_after: float = 1.0) -> None:
        super().__init__("the hub is busy checking passwords; try again shortly")
        self.retry_after = retry_after


class HashGate:
    """At most ``workers`` argon2 runs at once, in threads, and ``waiting`` more
    queued; a call beyond that is :class:`Busy` at once, without hashing.

    A run whose caller is cancelled (a client that hung up) still holds its
    worker until the thread finishes, so the bound is on threads, not callers.
    The semaphore is made at first use, on the loop that uses it."""

    def __init__(self, workers: int = 2, waiting: int = 8) -> None:
        if workers < 1 or waiting < 0:
            raise ValueError("a hash gate needs at least one worker")
        self.workers = workers
        self.waiting = waiting
        self._semaphore: asyncio.Semaphore | None = None
        #: calls admitted and not yet finished (running or queued)
        self.admitted = 0

    async def run(self, work: Callable[..., _T], *args: object) -> _T:
        if self.admitted >= self.workers + self.waiting:
            raise Busy()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.workers)
        semaphore = self._semaphore
        self.admitted += 1
        try:
            await semaphore.acquire()
        except BaseException:
            self.admitted -= 1
            raise
        task = asyncio.ensure_future(asyncio.to_thread(work, *args))

        def done(finished: asyncio.Future[_T]) -> None:
            semaphore.release()
            self.admitted -= 1
            if not finished.cancelled():
                finished.exception()  # retrieved: a cancelled caller does not warn

        task.add_done_callback(done)
        return await asyncio.shield(task)

    async def verify(self, stored: str | None, password: str) -> Check:
        return await self.run(verify_password, stored, password)

    async def dummy_verify(self, password: str) -> None:
        await self.run(dummy_verify, password)

    async def hash(self, password: str) -> str:
        """:func:`hash_password` (``WeakPassword`` before any hashing)."""
        return await self.run(HASHER.hash, check_new_password(password))
