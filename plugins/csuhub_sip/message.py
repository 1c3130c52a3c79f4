"""SIP requests as the monitoring leg reads them: a strict RFC 3261 parser with limits.

Everything here is outside input from the network, so the parser is strict and
bounded rather than forgiving: CRLF line ends only, a token method, a SIP/2.0
request line, at most :data:`MAX_HEADERS` header fields, a header section of
at most :data:`MAX_HEAD` bytes, a whole message of at most :data:`MAX_MESSAGE`
bytes, one Content-Length (mandatory on a stream, RFC 3261 §18.3), and the five
headers a response is routed by (Via, From, To, Call-ID, CSeq). Anything else
raises :class:`SipError`, the only exception :func:`parse_request` raises; it
carries the status to answer (``None``: drop, no response can be routed) and
whatever headers were read, so that a 400 can still be addressed.

Responses are never parsed: the hub is only ever a UAS here, and a response
reaching it is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

#: whole message, head and body (UDP cannot carry more anyway)
MAX_MESSAGE = 64 * 1024
#: request line and header fields, up to the blank line
MAX_HEAD = 16 * 1024
#: header field lines (after unfolding)
MAX_HEADERS = 96
MAX_CALL_ID = 256

#: RFC 3261 §7.3.3 compact forms (and RFC 3515/3892/4028's, which a PBX may send)
COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
    "m": "contact",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
}

#: what a response copies from its request, in this order (§8.2.6.2)
ROUTING = ("via", "from", "to", "call-id", "cseq")
_NAMES = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_WORD = r"[A-Za-z0-9.!%*_+`'~()<>:\\\"/\[\]?{}-]+"
_CALL_ID = re.compile(rf"{_WORD}(@{_WORD})?")
_CSEQ = re.compile(r"(\d{1,10})[ \t]+([A-Za-z0-9.!%*_+`'~-]+)")
_VIA = re.compile(r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z]+)[ \t]+([^;, \t]+)(.*)", re.S)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
_CONTROL = re.compile(r"[\r\n\x00]")

REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


class SipError(Exception):
    """A request the line refuses. ``status`` is the response to send (400...),
    or None when the message is dropped unanswered (not a request, or no way to
    route a response). ``headers`` are the fields read before the fault."""

    def __init__(
        self, status: int | None, reason: str, headers: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers: dict[str, list[str]] = headers or {}

    @property
    def routable(self) -> bool:
        """A response can be addressed: the five routing headers were read."""
        return self.status is not None and all(self.headers.get(h) for h in ROUTING)


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    sent_by: str
    params: dict[str, str | None]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")


@dataclass(frozen=True, slots=True)
class SipRequest:
    method: str
    uri: str
    #: canonical (lower-case, long-form) name -> values in order, one per line
    headers: dict[str, list[str]]
    body: bytes
    #: total size on the wire (head, blank line and body)
    size: int = 0
    _via: list[Via] = field(default_factory=list, repr=False)

    def get(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def call_id(self) -> str:
        return self.headers["call-id"][0]

    @property
    def cseq(self) -> tuple[int, str]:
        m = _CSEQ.fullmatch(self.headers["cseq"][0])
        assert m is not None  # checked by parse_request
        return int(m.group(1)), m.group(2)

    @property
    def via(self) -> Via:
        """The top Via: where the response goes, and the transaction's branch."""
        return self._via[0]

    @property
    def from_tag(self) -> str | None:
        return tag_of(self.headers["from"][0])

    @property
    def to_tag(self) -> str | None:
        return tag_of(self.headers["to"][0])


def split_commas(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and ``<...>``."""
    parts: list[str] = []
    depth, quoted, escaped, start = 0, False, False, 0
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def _params(text: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        out[name.strip().lower()] = value.strip().strip('"') if eq else None
    return out


def parse_via(value: str) -> Via:
    m = _VIA.fullmatch(value.strip())
    if m is None:
        raise ValueError("malformed Via")
    return Via(m.group(1).upper(), m.group(2), _params(m.group(3)))


def name_addr_uri(value: str) -> str | None:
    """The URI of a From/To/P-Asserted-Identity value (``"Name" <uri>;tag=x``)."""
    value = value.strip()
    if value.startswith('"'):  # a quoted display name may hold '<' or ';'
        close = re.match(r'"(?:[^"\\]|\\.)*"', value)
        if close is None:
            return None
        value = value[close.end() :].strip()
    if "<" in value:
        start = value.find("<")
        end = value.find(">", start)
        return value[start + 1 : end].strip() if end > start else None
    uri = value.split(";", 1)[0].strip()
    return uri if _URI.fullmatch(uri) else None


def tag_of(value: str) -> str | None:
    """The ``tag`` parameter of a From or To value (after the ``<uri>`` if any)."""
    tail = value[value.rfind(">") + 1 :] if ">" in value else value.partition(";")[2]
    return _params(tail).get("tag")


def uri_user(uri: str) -> str | None:
    """The number of a ``tel:`` URI, the user part of a ``sip:``/``sips:`` URI."""
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme == "tel":
        return unquote(rest.split(";", 1)[0]) or None
    if scheme in ("sip", "sips") and "@" in rest:
        user = rest.split("@", 1)[0].split(";", 1)[0].split(":", 1)[0]
        return unquote(user) or None
    return None


def _header_lines(lines: list[str], headers: dict[str, list[str]]) -> None:
    """Unfold and read header lines into ``headers`` (mutated, so that a fault
    half-way still leaves what was read for routing a 400)."""
    count = 0
    last: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t"):
            if last is None:
                raise SipError(400, "continuation line before any header", headers)
            headers[last][-1] += " " + line.strip()  # RFC 3261 §7.3.1 folding
            continue
        count += 1
        if count > MAX_HEADERS:
            raise SipError(400, f"more than {MAX_HEADERS} header fields", headers)
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN.fullmatch(name):
            raise SipError(400, "malformed header line", headers)
        key = name.lower()
        key = COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key


def _check_routing(headers: dict[str, list[str]], method: str) -> list[Via]:
    for name in ROUTING:
        if not headers.get(name):
            raise SipError(400, f"missing {_NAMES[name]} header", headers)
    for name in ("from", "to", "call-id", "cseq"):
        if len(headers[name]) != 1:
            raise SipError(400, f"more than one {_NAMES[name]} header", headers)
    call_id = headers["call-id"][0]
    if len(call_id) > MAX_CALL_ID or not _CALL_ID.fullmatch(call_id):
        raise SipError(400, "malformed Call-ID", headers)
    m = _CSEQ.fullmatch(headers["cseq"][0])
    if m is None or int(m.group(1)) >= 2**31:
        raise SipError(400, "malformed CSeq", headers)
    if m.group(2) != method:
        raise SipError(400, "CSeq method differs from the request's", headers)
    for name in ("from", "to"):
        if name_addr_uri(headers[name][0]) is None:
            raise SipError(400, f"malformed {_NAMES[name]} header", headers)
    try:
        vias = [parse_via(v) for line in headers["via"] for v in split_commas(line)]
    except ValueError:
        raise SipError(400, "malformed Via header", headers) from None
    if not vias:
        raise SipError(400, "missing Via header", headers)
    return vias


def partial_headers(head: bytes) -> dict[str, list[str]]:
    """The whole header lines of a cut or oversized head, so that its 400 can
    still be routed (the start line and the last, perhaps cut, line skipped).
    A value holding a bare CR, LF or NUL is dropped, never copied into the
    response (a header injected into our answer); without its Via, say, the
    message is no longer routable and is dropped unanswered."""
    headers: dict[str, list[str]] = {}
    lines = head[:MAX_HEAD].decode("utf-8", "replace").split("\r\n")[1:-1]
    try:
        _header_lines(lines, headers)
    except SipError:
        pass
    clean = {}
    for name, values in headers.items():
        kept = [v for v in values if not _CONTROL.search(v)]
        if kept:
            clean[name] = kept
    return clean


def parse_request(data: bytes, *, stream: bool = False) -> SipRequest:
    """One request from ``data``: a whole datagram, or one message cut from a
    stream by :class:`StreamFramer` (``stream=True``: Content-Length mandatory).

    Over a datagram, bytes after Content-Length are ignored and a body shorter
    than it is a truncated message (RFC 3261 §18.3)."""
    if len(data) > MAX_MESSAGE:
        raise SipError(None, f"message larger than {MAX_MESSAGE} bytes")
    start = 0
    while data.startswith(b"\r\n", start):  # §7.5: CRLFs before the start line
        start += 2
    end = data.find(b"\r\n\r\n", start)
    head_bytes = data[start:end] if end >= 0 else data[start : start + MAX_HEAD]
    if end < 0 or end - start > MAX_HEAD:
        why = "header section too large" if len(head_bytes) >= MAX_HEAD else "truncated"
        raise SipError(400, why, partial_headers(head_bytes))
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError(None, "header section is not UTF-8") from None
    bare = head.replace("\r\n", "")
    if "\n" in bare or "\r" in bare or "\x00" in head:
        raise SipError(None, "bare CR, LF or NUL in the header section")
    lines = head.split("\r\n")
    request_line = lines[0]
    if request_line.startswith("SIP/"):
        raise SipError(None, "a response (this line only answers requests)")
    headers = {}
    _header_lines(lines[1:], headers)
    parts = request_line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _URI.fullmatch(parts[1]):
        raise SipError(400, "malformed request line", headers)
    method, uri, version = parts
    if version != "SIP/2.0":
        raise SipError(505 if version.startswith("SIP/") else 400, "not SIP/2.0", headers)
    lengths = set(headers.get("content-length", ()))
    if len(lengths) > 1:
        raise SipError(400, "conflicting Content-Length headers", headers)
    body_start = end + 4
    available = len(data) - body_start
    if lengths:
        text = lengths.pop()
        if not text.isascii() or not text.isdigit() or len(text) > 6:
            raise SipError(400, "malformed Content-Length", headers)
        length = int(text)
        if length > available:
            raise SipError(400, "truncated body (shorter than Content-Length)", headers)
    elif stream:
        raise SipError(400, "Content-Length is mandatory over a stream", headers)
    else:
        length = available
    vias = _check_routing(headers, method)
    body = data[body_start : body_start + length]
    return SipRequest(method, uri, headers, body, body_start + length, vias)


class StreamFramer:
    """Cuts a TCP byte stream into messages (RFC 3261 §18.3), bounded.

    ``feed`` returns the complete messages now buffered. A header section that
    does not end within :data:`MAX_HEAD`, or a Content-Length that makes the
    message too large, raises :class:`SipError`: the connection is then closed,
    as the stream's framing can no longer be trusted."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        #: RFC 5626 keep-alive pings seen (a double CRLF between messages)
        self.pings = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while True:
            while self._buffer.startswith(b"\r\n"):
                if self._buffer.startswith(b"\r\n\r\n"):
                    self.pings += 1
                    del self._buffer[:4]
                elif b"\r\n\r\n".startswith(bytes(self._buffer)):
                    break  # perhaps a ping still arriving
                else:
                    del self._buffer[:2]  # §7.5: a CRLF before a message
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise self._refuse("header section too large")
                return out
            if end > MAX_HEAD:
                raise self._refuse("header section too large")
            match = re.search(
                rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d{1,6})[ \t]*(?=\r\n)",
                bytes(self._buffer[: end + 2]),
                re.I,
            )
            length = int(match.group(1)) if match else 0
            total = end + 4 + length
            if total > MAX_MESSAGE:
                raise self._refuse(f"message larger than {MAX_MESSAGE} bytes")
            if match is None:
                # parse_request refuses it (Content-Length mandatory) with a 400
                total = end + 4
            if len(self._buffer) < total:
                return out
            out.append(bytes(self._buffer[:total]))
            del self._buffer[:total]

    def _refuse(self, reason: str) -> SipError:
        headers = partial_headers(bytes(self._buffer[:MAX_HEAD]))
        self._buffer.clear()
        return SipError(400, reason, headers)


def build_response(
    request_headers: dict[str, list[str]],
    status: int,
    *,
    to_tag: str | None = None,
    received: str | None = None,
    rport: int | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    reason: str | None = None,
) -> bytes:
    """A response to a request whose headers were read (§8.2.6): Via, From, To,
    Call-ID and CSeq copied, a To tag added when the request's To had none
    (except on 100 Trying), and ``received``/``rport`` on the top Via (§18.2.1,
    RFC 3581) so that the PBX can match it."""
    phrase = reason or REASONS.get(status, "Unknown")
    phrase = "".join(c for c in phrase if c.isprintable())[:120]
    lines = [f"SIP/2.0 {status} {phrase}"]
    for i, via in enumerate(request_headers["via"]):
        if i == 0 and (received or rport is not None):
            first, *rest = split_commas(via)
            if rport is not None and re.search(r";\s*rport(?=\s*(;|$))", first):
                first = re.sub(r";\s*rport(?=\s*(;|$))", f";rport={rport}", first, count=1)
            if received:
                first += f";received={received}"
            via = ", ".join([first, *rest])
        lines.append(f"Via: {via}")
    lines.append(f"From: {request_headers['from'][0]}")
    to = request_headers["to"][0]
    if to_tag and status > 100 and tag_of(to) is None:
        to += f";tag={to_tag}"
    lines.append(f"To: {to}")
    lines.append(f"Call-ID: {request_headers['call-id'][0]}")
    lines.append(f"CSeq: {request_headers['cseq'][0]}")
    lines.append("Server: csuhub")
    for name, value in extra:
        lines.append(f"{name}: {value}")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
