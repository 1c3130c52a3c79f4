"""Digest authentication of the PBX (RFC 8760 over RFC 2617, as RFC 3261 §22.4 uses it).

A site that does not rely on the source address alone sets ``require_auth``:
every INVITE, BYE and OPTIONS is then challenged with a 401 offering SHA-256
and MD5 (SHA-256 first: RFC 8760 §2.4 says the preferred algorithm comes
first; MD5 stays because most PBXs' trunks only speak it). ACK and CANCEL are
never challenged (§22.1). ``qop=auth`` is required.

What a captured ``Authorization`` header is worth to whoever captured it:

* a nonce names the time it was made, a random salt, and an HMAC of both and
  of the **source address** it was sent to, under a key drawn at start: it is
  refused from any other address, and issuing one keeps no state (a flood of
  challenges costs nothing);
* it is good for :data:`NONCE_LIFETIME` (60 s), after which a correct answer
  gets a fresh 401 with ``stale=true`` (the PBX retries without asking anyone
  for the password);
* the highest nonce count (``nc``) accepted for each nonce is remembered, in a
  table of at most :data:`MAX_NONCES` nonces: an answer whose count is not
  higher is a replay (on a new Call-ID and branch: a retransmission of the
  same request never gets here, the transaction layer absorbs it) and gets a
  fresh challenge with ``stale=true``. A nonce pushed out of the table is not
  forgotten into acceptance: every nonce no newer than the newest one pushed
  out is answered ``stale`` too (fail closed);
* the digest's ``uri`` must be the request's own Request-URI.

So a captured header is worth nothing once the hub has seen it: its count
is used up. A replay could only work if the original never reached the hub
(an attacker on the path who suppressed it), from the same source address,
within the minute.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict

NONCE_LIFETIME = 60.0
#: nonces whose highest count is remembered (a PBX uses a few at a time)
MAX_NONCES = 4096
ALGORITHMS = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)\s*(?:,|$)')


def parse_authorization(value: str) -> dict[str, str] | None:
    """The parameters of a ``Digest`` Authorization header, or None."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest" or len(rest) > 4096:
        return None
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            return None
        raw = m.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[m.group(1).lower()] = raw
        pos = m.end()
    return params


class DigestAuth:
    """Challenges and verifies one line's PBX against its realm and password."""

    def __init__(
        self,
        realm: str,
        password: str,
        username: str | None = None,
        *,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        self.realm = realm
        self._password = password
        self._username = username
        self._key = secrets.token_bytes(32)
        #: nonce -> highest nc accepted, oldest first
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_nonces = max_nonces
        #: the newest issue time among nonces pushed out of ``_counts``
        self._forgotten_until = -1

    def _mac(self, stamp: str, salt: str, source: str) -> str:
        text = f"{stamp}.{salt}.{source}".encode()
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()[:32]

    def _nonce(self, now: float, source: str) -> str:
        stamp, salt = f"{int(now):x}", secrets.token_hex(4)
        return f"{stamp}.{salt}.{self._mac(stamp, salt, source)}"

    def _nonce_time(self, nonce: str, source: str) -> int | None:
        """When a nonce this key made for ``source`` was issued, or None."""
        parts = nonce.split(".")
        if len(parts) != 3 or len(parts[0]) > 16:
            return None
        stamp, salt, mac = parts
        expected = self._mac(stamp, salt, source)
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        try:
            return int(stamp, 16)
        except ValueError:
            return None

    def challenge(
        self, source: str, *, stale: bool = False, now: float | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The WWW-Authenticate headers of a 401 to ``source`` (one nonce for both)."""
        nonce = self._nonce(time.time() if now is None else now, source)
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        tail = ", stale=true" if stale else ""
        return tuple(
            (
                "WWW-Authenticate",
                f'Digest realm="{realm}", nonce="{nonce}", algorithm={name}, qop="auth"{tail}',
            )
            for name in ALGORITHMS
        )

    def verify(
        self,
        authorization: str | None,
        method: str,
        uri: str,
        source: str,
        *,
        now: float | None = None,
    ) -> str:
        """``"ok"``; ``"stale"``, a correct answer that cannot be taken again
        (its nonce expired, or its count is not higher than one already
        accepted): challenge again with stale=true; or ``"refused"``."""
        if not authorization:
            return "refused"
        p = parse_authorization(authorization)
        if p is None or not all(k in p for k in ("username", "realm", "nonce", "uri", "response")):
            return "refused"
        hash_ = ALGORITHMS.get(p.get("algorithm", "MD5").upper())
        if hash_ is None or p["realm"] != self.realm or p["uri"] != uri:
            return "refused"
        if self._username is not None and p["username"] != self._username:
            return "refused"
        if p.get("qop") != "auth" or "cnonce" not in p:
            return "refused"
        nc = p.get("nc", "")
        if not re.fullmatch(r"[0-9a-fA-F]{8}", nc):
            return "refused"
        now = time.time() if now is None else now
        issued = self._nonce_time(p["nonce"], source)
        if issued is None or issued > now + 5:
            return "refused"

        def h(text: str) -> str:
            return hash_(text.encode("utf-8")).hexdigest()

        ha1 = h(f"{p['username']}:{self.realm}:{self._password}")
        ha2 = h(f"{method}:{p['uri']}")
        expected = h(f"{ha1}:{p['nonce']}:{nc}:{p['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode()):
            return "refused"
        if now - issued > NONCE_LIFETIME:
            return "stale"
        return "ok" if self._count(p["nonce"], int(nc, 16), issued) else "stale"

    def _count(self, nonce: str, nc: int, issued: int) -> bool:
        """Record ``nc`` for ``nonce`` if it is higher than any before it."""
        last = self._counts.get(nonce)
        if last is None and issued <= self._forgotten_until:
            return False  # its count may have been pushed out: fail closed
        if last is not None and nc <= last:
            return False
        self._counts[nonce] = nc
        self._counts.move_to_end(nonce)
        while len(self._counts) > self._max_nonces:
            old, _ = self._counts.popitem(last=False)
            self._forgotten_until = max(self._forgotten_until, int(old.split(".")[0], 16))
        return True
