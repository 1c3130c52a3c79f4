"""API token secrets: random, shown once, stored only as their SHA-256.

A plain SHA-256 suffices here, unlike passwords: a token holds 256 random
bits, so there is nothing for a slow hash to protect against guessing.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "csu_"  # noqa: S105 - a public prefix, not a secret


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
