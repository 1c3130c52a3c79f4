"""How a dispatch system signs a call, and how the line checks it.

The construction is the one Stripe and Slack use, so a CAD integrator has met
it before::

    signed  = ASCII(timestamp) + b"." + body          # the exact bytes sent
    sig     = hex(HMAC-SHA256(key=UTF-8(secret), msg=signed))
    headers = X-Csuhub-Timestamp: <timestamp>          # integer Unix seconds
              X-Csuhub-Signature: sha256=<sig>         # or the bare hex

The timestamp is inside the MAC so that it cannot be moved forward to make an
old request look fresh; the freshness window (``max_skew``) bounds how long a
captured request is worth anything, and :class:`ReplayCache` refuses the same
signed request twice inside that window. A CAD that re-sends a call re-signs
it with a new timestamp: that is a new request (an update of the same external
id), not a replay.

Nothing here logs, and no error message carries the secret or a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict

#: an HMAC-SHA256 in hex, with or without the ``sha256=`` scheme prefix
_SIGNATURE = re.compile(r"(?:sha256=)?([0-9a-fA-F]{64})")
#: integer Unix seconds in ASCII (``[0-9]``, not ``\d``: no Arabic-Indic digits)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The lowercase hex signature of ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def parse_signature(raw: str) -> str | None:
    """The hex digest of a signature header (lowercased), or None when the
    header is not one; surrounding blanks are ignored, as HTTP allows."""
    found = _SIGNATURE.fullmatch(raw.strip())
    return found.group(1).lower() if found else None


def parse_timestamp(raw: str) -> int | None:
    """Integer Unix seconds, or None: a fraction, a sign, an exponent or
    anything but ASCII digits is not a timestamp (the MAC covers the header's
    exact text, so two spellings of one time would be two signatures)."""
    text = raw.strip()
    return int(text) if _TIMESTAMP.fullmatch(text) else None


def verify(secret: str, timestamp: str, body: bytes, digest: str) -> bool:
    """Whether ``digest`` (from :func:`parse_signature`) signs ``body`` at
    ``timestamp`` (the header's text); constant-time comparison."""
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), digest.encode("ascii"))


class ReplayCache:
    """Signatures accepted recently, each remembered until it expires.

    Bounded: when ``capacity`` unexpired signatures are held, the cache is
    full and :meth:`add` answers False, so the line refuses the request instead
    of forgetting one that could then be replayed (fail closed). Only
    authentic, fresh requests are ever added, so filling it needs the secret.
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        #: digest -> expiry, in order of insertion
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, digest: str, now: float) -> bool:
        self._expire(now)
        return digest in self._seen

    def add(self, digest: str, now: float, ttl: float) -> bool:
        """Remember ``digest`` for ``ttl`` seconds; False when the cache is full."""
        self._expire(now)
        if len(self._seen) >= self.capacity:
            return False
        self._seen[digest] = now + ttl
        self._seen.move_to_end(digest)
        return True

    def clear(self) -> None:
        self._seen.clear()

    def _expire(self, now: float) -> None:
        # every entry gets the same ttl, so insertion order is expiry order; a
        # clock set back only keeps entries longer than needed, never shorter
        while self._seen:
            digest, expiry = next(iter(self._seen.items()))
            if expiry > now:
                break
            del self._seen[digest]
