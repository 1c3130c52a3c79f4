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
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache

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
