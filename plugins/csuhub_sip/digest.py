"""Digest authentication of the PBX (RFC 8760 over RFC 2617, as RFC 3261 §22.4 uses it).

A site that does not rely on the source address alone sets ``require_auth``:
every INVITE, BYE and OPTIONS is then challenged with a 401 offering SHA-256
and MD5 (SHA-256 first: RFC 8760 §2.4 says the preferred algorithm comes
first; MD5 stays because most PBXs' trunks only speak it). ACK and CANCEL are
never challenged (§22.1). ``qop=auth`` is required.

Nonces are stateless: the time they were made and an HMAC of it under a key
drawn at start, so that a flood of challenges keeps no state. A nonce is good
for :data:`NONCE_LIFETIME` seconds, after which the answer is a fresh 401 with
``stale=true`` (the PBX retries without asking anyone for the password). The
nonce count is not tracked: a replay within the nonce's lifetime of an INVITE
already seen is a retransmission the transaction layer absorbs anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

NONCE_LIFETIME = 300.0
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

    def __init__(self, realm: str, password: str, username: str | None = None) -> None:
        self.realm = realm
        self._password = password
        self._username = username
        self._key = secrets.token_bytes(32)

    def _nonce(self, now: float) -> str:
        stamp = f"{int(now):x}"
        mac = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp}.{mac}"

    def _nonce_age(self, nonce: str, now: float) -> float | None:
        stamp, _, mac = nonce.partition(".")
        expected = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        try:
            return now - int(stamp, 16)
        except ValueError:
            return None

    def challenge(
        self, *, stale: bool = False, now: float | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The WWW-Authenticate headers of a 401."""
        nonce = self._nonce(time.time() if now is None else now)
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        tail = ", stale=true" if stale else ""
        return tuple(
            (
                "WWW-Authenticate",
                f'Digest realm="{realm}", nonce="{nonce}", algorithm={name}, qop="auth"{tail}',
            )
            for name in ALGORITHMS
        )

    def verify(self, authorization: str | None, method: str, *, now: float | None = None) -> str:
        """``"ok"``, ``"stale"`` (a good answer to an expired nonce: challenge
        again with stale=true) or ``"refused"``."""
        if not authorization:
            return "refused"
        p = parse_authorization(authorization)
        if p is None or not all(k in p for k in ("username", "realm", "nonce", "uri", "response")):
            return "refused"
        hash_ = ALGORITHMS.get(p.get("algorithm", "MD5").upper())
        if hash_ is None or p["realm"] != self.realm:
            return "refused"
        if self._username is not None and p["username"] != self._username:
            return "refused"
        if p.get("qop") != "auth" or "nc" not in p or "cnonce" not in p:
            return "refused"
        age = self._nonce_age(p["nonce"], time.time() if now is None else now)
        if age is None or age < -5:
            return "refused"

        def h(text: str) -> str:
            return hash_(text.encode("utf-8")).hexdigest()

        ha1 = h(f"{p['username']}:{self.realm}:{self._password}")
        ha2 = h(f"{method}:{p['uri']}")
        expected = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode()):
            return "refused"
        return "stale" if age > NONCE_LIFETIME else "ok"
