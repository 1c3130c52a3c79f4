"""API token secrets: random, shown once, stored only as their SHA-256.

A plain SHA-256 suffices here, unlike passwords: a token holds 256 random
bits, so there is nothing for a slow hash to protect against guessing.

A token made without an account gets a service account of its own,
``token:<name>``. Its camera scope is empty (it sees no camera until an
administrator grants one: ``csuhub users grant token:<name> --scope ...``)
for every role but the legacy ``viewer``, which keeps every camera as tokens
had before accounts existed: a kiosk token made as ``--role wall`` must not see
the whole city by default.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "csu_"  # noqa: S105 - a public prefix, not a secret
#: the account a token made without one belongs to is this prefix and its name
SERVICE_PREFIX = "token:"
#: the one role whose own-account tokens see every camera (as before accounts)
LEGACY_ALL_CAMERAS = "viewer"


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def service_scope(role: str) -> list[str]:
    """The camera scope of a token's own service account, made with ``role``."""
    return ["*"] if role == LEGACY_ALL_CAMERAS else []
