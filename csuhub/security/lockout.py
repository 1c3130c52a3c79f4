"""Failed logins lock the account and the client address for a growing time.

Past a threshold of failures, each failure locks for twice as long as the one
before, from ``first_lock`` up to ``max_lock``; a counter is forgotten after
``forget_after`` without a failure, and a successful login clears the
account's (not the address's: a valid login elsewhere must not reset an
attacker's count). The address threshold is higher than the account's
because a control room's operators often share one address (NAT, a proxy):
one person's typos must not lock the room.

A locked login is refused before its password is looked at; the caller still
spends a password check's time (:func:`csuhub.security.passwords.dummy_verify`)
so that a lock is not told apart by timing. Names that do not exist are
counted and locked like real ones, so a lock says nothing about a name.

Refusals while locked are audited once per lock period (the first); the
others are counted, and the count is written with the first refusal of the
next lock period of that key (:meth:`Lockout.first_refusal`). The audit cannot
be deleted, so an anonymous client hammering a locked account must not be able
to grow it. IPv6 clients are counted per /64, the block one subscriber gets:
rotating addresses inside it is one address to the lockout.

Attempts on one account are serialised (:class:`AttemptLocks`): the lock is
read, the password checked and the failure written before the next attempt on
that account reads the lock, so concurrent guesses cannot all pass a check
made before any of them was counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from csuhub.security.passwords import Busy

if TYPE_CHECKING:
    from csuhub.store import Store
    from csuhub.store.audited import Entry
    from csuhub.store.lockout import Counter


#: lock periods whose unaudited refusals are counted in memory
QUIET_KEYS = 4096


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    account_threshold: int = 5
    address_threshold: int = 20
    first_lock: float = 60.0
    max_lock: float = 3600.0
    forget_after: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if min(self.account_threshold, self.address_threshold) < 1:
            raise ValueError("lockout thresholds are at least 1")
        if not 0 < self.first_lock <= self.max_lock:
            raise ValueError("lockout needs 0 < first_lock <= max_lock")

    def lock_for(self, threshold: int, failures: int) -> float:
        """Seconds to lock after the ``failures``-th failure in a row."""
        if failures < threshold:
            return 0.0
        return float(min(self.first_lock * 2 ** min(failures - threshold, 32), self.max_lock))


def account_key(name: str) -> str:
    return f"user:{name}"


def address_key(address: str | None) -> str:
    """``addr:<ip>``; an IPv6 address counts as its /64 (``addr:2001:db8::/64``)."""
    if not address:
        return "addr:unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"addr:{address}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"addr:{ip}"


class AttemptLocks:
    """One asyncio lock per key (an account), held while an attempt reads the
    lockout, checks the password and counts the failure. Locks are dropped when
    nobody holds or waits for them; at ``limit`` distinct keys in flight a new
    one is :class:`~csuhub.security.passwords.Busy` (bounded memory)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        #: key -> its lock and how many attempts hold or wait for it
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            if len(self._locks) >= self.limit:
                raise Busy()
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass(frozen=True, slots=True)
class Locks:
    """What a failure changed: the counters, and which of them it just locked."""

    counters: tuple[Counter, ...]
    locked: tuple[Counter, ...]


class Lockout:
    def __init__(
        self,
        store: Store,
        policy: LockoutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or LockoutPolicy()
        self.clock = clock
        #: key -> (the lock period's end, refusals in it not audited)
        self._quiet: dict[str, tuple[float, int]] = {}

    async def retry_after(self, name: str, address: str | None) -> float:
        """Seconds until this account and address may try again (0: now)."""
        lock = await self.lock(name, address)
        return 0.0 if lock is None else lock.locked_until - self.clock()

    async def lock(self, name: str, address: str | None) -> Counter | None:
        """The counter that locks this account or address longest, None if neither is."""
        now = self.clock()
        found = await self.store.login_failures.read(account_key(name), address_key(address))
        locked = [c for c in found if c.locked_until > now]
        return max(locked, key=lambda c: c.locked_until) if locked else None

    def first_refusal(self, lock: Counter) -> int | None:
        """For a refusal under ``lock``: None when one was already audited in
        this lock period (it is counted), else how many went unaudited in the
        key's earlier lock periods (kept in memory, at most ``QUIET_KEYS`` keys)."""
        seen = self._quiet.get(lock.key)
        if seen is not None and seen[0] == lock.locked_until:
            self._quiet[lock.key] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self._quiet) >= QUIET_KEYS:
            now = self.clock()
            for key in [k for k, (until, _) in self._quiet.items() if until <= now]:
                del self._quiet[key]
            while len(self._quiet) >= QUIET_KEYS:
                del self._quiet[next(iter(self._quiet))]
        self._quiet[lock.key] = (lock.locked_until, 0)
        return seen[1] if seen is not None else 0

    async def failed(
        self,
        name: str,
        address: str | None,
        *,
        audit: Entry | None = None,
        lock_audit: Callable[[Counter], Entry] | None = None,
    ) -> Locks:
        """Count the failure for the account and the address; ``audit`` is written
        with the account's count, ``lock_audit(counter)`` with each lock placed."""
        now, policy = self.clock(), self.policy
        counters = []
        for key, threshold, entry in (
            (account_key(name), policy.account_threshold, audit),
            (address_key(address), policy.address_threshold, None),
        ):
            counters.append(
                await self.store.login_failures.fail(
                    key,
                    now,
                    policy.forget_after,
                    partial(policy.lock_for, threshold),
                    audit=entry,
                    lock_audit=lock_audit,
                )
            )
        return Locks(tuple(counters), tuple(c for c in counters if c.locked_until > now))

    async def succeeded(self, name: str) -> None:
        await self.store.login_failures.clear(account_key(name))
