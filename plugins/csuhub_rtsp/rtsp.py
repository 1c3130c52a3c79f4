"""A minimal, bounded RTSP client: OPTIONS and DESCRIBE, Basic and Digest auth.

Enough to tell "reachable and serving a stream" from "refused", "unauthorized"
or "no such stream" without starting ffmpeg, which is what a health probe
needs. Everything from the server is bounded and treated as untrusted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

MAX_HEADER = 16 * 1024
MAX_BODY = 64 * 1024
USER_AGENT = "csuhub"


class RtspError(Exception):
    """A failure with a state an operator understands (``kind``)."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        # refused | timeout | unauthorized | not_found | unavailable | protocol | error
        self.kind = kind
        #: a transient refusal (503): ask again then, not after the health backoff
        self.retry_after = retry_after


@dataclass
class RtspResponse:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class StreamInfo:
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    control: list[str] = field(default_factory=list)


def strip_credentials(url: str) -> tuple[str, str, str]:
    """``rtsp://u:p@h/x`` -> (``rtsp://h/x``, u, p); the URL sent never carries them."""
    parts = urlsplit(url)
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), user, password


def _digest(method: str, uri: str, user: str, password: str, challenge: str) -> str:
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 - RFC 2617
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()  # noqa: S324
    if "auth" in fields.get("qop", "").split(","):
        cnonce = secrets.token_hex(8)
        response = hashlib.md5(  # noqa: S324
            f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}".encode()
        ).hexdigest()
        return (
            f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", qop=auth, nc=00000001, cnonce="{cnonce}"'
        )
    response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()  # noqa: S324
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}"'
    )


class RtspClient:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url, self.user, self.password = strip_credentials(url)
        parts = urlsplit(self.url)
        if parts.scheme not in ("rtsp", "rtsps"):
            raise RtspError("error", f"not an RTSP URL ({parts.scheme}://)")
        self.host = parts.hostname or ""
        self.port = parts.port or (322 if parts.scheme == "rtsps" else 554)
        self.tls = parts.scheme == "rtsps"
        self.timeout = timeout
        self._cseq = 0
        self._auth_header: str | None = None
        self._challenge: str | None = None

    async def _exchange(self, method: str, extra: dict[str, str] | None = None) -> RtspResponse:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.tls or None), self.timeout
            )
        except TimeoutError:
            raise RtspError("timeout", f"no answer from {self.host}:{self.port}") from None
        except ConnectionRefusedError:
            raise RtspError("refused", f"connection refused by {self.host}:{self.port}") from None
        except OSError as err:
            raise RtspError("refused", f"cannot reach {self.host}:{self.port}: {err}") from None
        try:
            return await asyncio.wait_for(
                self._request(reader, writer, method, extra), self.timeout
            )
        except TimeoutError:
            raise RtspError("timeout", f"{method} timed out") from None
        finally:
            writer.close()

    async def _request(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        extra: dict[str, str] | None,
    ) -> RtspResponse:
        for attempt in range(2):
            self._cseq += 1
            headers = {"CSeq": str(self._cseq), "User-Agent": USER_AGENT, **(extra or {})}
            if self._challenge is not None:
                headers["Authorization"] = self._authorization(method)
            lines = [f"{method} {self.url} RTSP/1.0", *(f"{k}: {v}" for k, v in headers.items())]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            response = await self._read(reader)
            if response.status == 401 and attempt == 0 and self.user:
                self._challenge = _pick_challenge(response.headers.get("www-authenticate", ""))
                continue
            return response
        return response

    def _authorization(self, method: str) -> str:
        assert self._challenge is not None
        if self._challenge.lower().startswith("digest"):
            return _digest(method, self.url, self.user, self.password, self._challenge)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    async def _read(self, reader: asyncio.StreamReader) -> RtspResponse:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise RtspError("protocol", "response headers too large") from None
        except asyncio.IncompleteReadError:
            raise RtspError("protocol", "connection closed before a response") from None
        if len(head) > MAX_HEADER:
            raise RtspError("protocol", "response headers too large")
        lines = head.decode("latin-1").split("\r\n")
        match = re.match(r"^RTSP/1\.\d (\d{3}) ?(.*)$", lines[0])
        if not match:
            raise RtspError("protocol", "not an RTSP response")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                headers[key] = (
                    f"{headers[key]}, {value.strip()}" if key in headers else (value.strip())
                )
        length = headers.get("content-length", "0")
        # ASCII only: '²'.isdigit() is true and int('²') raises
        size = int(length) if length.isascii() and length.isdigit() else 0
        if size > MAX_BODY:
            raise RtspError("protocol", f"response body of {size} bytes is too large")
        try:
            body = await reader.readexactly(size) if size else b""
        except asyncio.IncompleteReadError:
            raise RtspError("protocol", "connection closed in the middle of a body") from None
        return RtspResponse(int(match.group(1)), match.group(2)[:100], headers, body)

    async def options(self) -> RtspResponse:
        return self._check(await self._exchange("OPTIONS"))

    async def describe(self) -> StreamInfo:
        response = self._check(await self._exchange("DESCRIBE", {"Accept": "application/sdp"}))
        return parse_sdp(response.body.decode("utf-8", "replace"))

    def _check(self, response: RtspResponse) -> RtspResponse:
        if response.status == 401:
            raise RtspError(
                "unauthorized",
                "unauthorized: the camera refused the credentials"
                if self.user
                else "unauthorized: the camera needs credentials",
            )
        if response.status == 404:
            raise RtspError("not_found", "no such stream on the camera (404)")
        if response.status == 503:
            # busy, e.g. preparing its stream: a server says when to come back
            raise RtspError(
                "unavailable",
                f"camera answered 503 {response.reason}",
                retry_after=_retry_after(response.headers),
            )
        if response.status >= 400:
            raise RtspError("error", f"camera answered {response.status} {response.reason}")
        return response


def _retry_after(headers: dict[str, str]) -> float:
    """Retry-After in seconds, bounded to [0.5, 30]; 1 s when absent or a date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "")
    try:
        return min(max(float(value), 0.5), 30.0)
    except ValueError:
        return 1.0


def _pick_challenge(header: str) -> str:
    # prefer Digest when both are offered (several WWW-Authenticate joined by ", ")
    for part in re.split(r",\s*(?=(?:Basic|Digest)\b)", header):
        if part.strip().lower().startswith("digest"):
            return part.strip()
    return header.strip() or "Basic"


def parse_sdp(sdp: str) -> StreamInfo:
    info = StreamInfo()
    in_video = False
    for raw in sdp.splitlines()[:500]:
        line = raw.strip()
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=rtpmap:") and info.codec is None:
            match = re.match(r"a=rtpmap:\d+ ([\w.-]+)/", line)
            info.codec = match.group(1).lower()[:20] if match else None
        elif in_video and line.startswith("a=framerate:"):
            try:
                info.fps = float(line.split(":", 1)[1])
            except ValueError:
                pass
        elif in_video and line.startswith("a=x-dimensions:"):
            dims = re.findall(r"\d+", line)
            if len(dims) == 2:
                info.width, info.height = int(dims[0]), int(dims[1])
        elif line.startswith("a=control:") and len(info.control) < 16:
            info.control.append(line.split(":", 1)[1][:200])
    return info
