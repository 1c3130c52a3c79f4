"""A camera in the register: its lifecycle states, the status of its prefectoral
authorisation, and what the manager needs to drive it.

Lifecycle (the ``state`` column, persisted and fired as ``CameraStateChanged``)::

    discovered --(a driver claims it)--> pending_adoption --(adopt)--> adopted
    adopted --(health checks)--> online | degraded | offline
    configured cameras start at adopted; disabled and removed are terminal
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

DISCOVERED = "discovered"
PENDING = "pending_adoption"
ADOPTED = "adopted"
ONLINE = "online"
DEGRADED = "degraded"
OFFLINE = "offline"
DISABLED = "disabled"
REMOVED = "removed"

AUTH_VALID = "valid"
AUTH_EXPIRING = "expiring"
AUTH_EXPIRED = "expired"
AUTH_MISSING = "missing"

#: From this many days before expiry, operators are warned.
EXPIRY_WARNING_DAYS = 30


class AdoptionError(ValueError):
    """Adoption refused; the message says what is missing, for admins."""


def authorization_status(expires: dt.date | str | None, today: dt.date | None = None) -> str:
    if expires is None:
        return AUTH_MISSING
    if isinstance(expires, str):
        expires = dt.date.fromisoformat(expires)
    today = today or dt.date.today()
    if expires < today:
        return AUTH_EXPIRED
    if (expires - today).days <= EXPIRY_WARNING_DAYS:
        return AUTH_EXPIRING
    return AUTH_VALID


@dataclass
class CameraEntry:
    """What the manager needs to drive one camera, from the site file or the store."""

    id: str
    name: str
    driver: str
    options: dict[str, Any]
    origin: str  # config | adopted
    authorization_expires: str | None = None
    enabled: bool = True
