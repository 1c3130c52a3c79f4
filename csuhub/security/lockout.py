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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from csuhub.store import Store
    from csuhub.store.audited import Entry
    from csuhub.store.lockout import Counter


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
    return f"addr:{address or 'unknown'}"


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

    async def retry_after(self, name: str, address: str | None) -> float:
        """Seconds until this account and address may try again (0: now)."""
        now = self.clock()
        found = await self.store.login_failures.read(account_key(name), address_key(address))
        return max([c.locked_until - now for c in found] + [0.0])

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
