"""Secrets out of what ffmpeg says, before it is kept, logged or shown.

Why: ffmpeg names its input in its errors (``rtsp://admin:pw@cam/...: Connection
refused``), and an upstream's last error becomes the ``offline`` reason every
viewer of the camera reads, the stream's state JSON and the hub's log. A
viewer holds ``live.view``, not the camera's credentials. So every line is
cut, in this order: the userinfo of any URL (``scheme://user:pass@`` becomes
``scheme://***@``), any ``password=``-like parameter's value, and, failing
closed for what no pattern knows (a password with a space, an ``@`` ffmpeg
shows unencoded), the literal secrets of the stream being read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

#: a URL's userinfo, up to the last ``@`` before the host's path (greedy: an
#: unencoded ``@`` in a password is cut too)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#]*@")
#: ``password=...``, ``passwd:...``, ``pwd=...``, ``token=...``, ``secret=...``
_PARAM = re.compile(
    r"(?i)\b((?:pass(?:word|wd)?|pwd|secret|token|auth|key|credentials?)\s*[=:]\s*)[^\s&;,'\"]+"
)
MASK = "***"


def secrets_of(url: str) -> tuple[str, ...]:
    """The password of ``url``'s userinfo, as written and decoded (read by the
    same pattern that cuts it: a URL ``urlsplit`` refuses still has one)."""
    found = _USERINFO.search(url)
    if found is None:
        return ()
    _, colon, password = found.group(0)[len(found.group(1)) : -1].partition(":")
    if not colon or not password:
        return ()
    kept = {password, unquote(password)}
    return tuple(sorted((s for s in kept if len(s) >= 3), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL credentials, password-like parameters or ``secrets``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _PARAM.sub(lambda m: f"{m.group(1)}{MASK}", text)
