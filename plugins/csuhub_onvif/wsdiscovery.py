"""WS-Discovery (ONVIF) probing over asyncio UDP, lenient about what cameras send.

Why not the PyPI ``wsdiscovery`` package: it ignores loopback and rejects the
single-``ProbeMatch`` replies that real cameras (and ipycam) send, so it finds
nothing here. This module:

* sends a ``Probe`` for ``dn:NetworkVideoTransmitter`` to 239.255.255.250:3702
  and repeats it with growing, jittered delays (SOAP-over-UDP's
  retransmission, continued until the wait ends, so a lost probe or a lost
  reply is recovered within the scan);
* yields each camera **as its answer arrives** (no fixed sleep);
* accepts ``ProbeMatches`` with one or more ``ProbeMatch`` and a bare
  ``ProbeMatch``, matched by local name whatever the namespace prefixes;
* deduplicates by endpoint reference, so an IP change (DHCP) is the same
  camera with a new address;
* treats every byte as hostile: size-bounded, any DTD refused (no entity
  expansion, no XXE), names bounded, only http(s) service addresses kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import re
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

MULTICAST_GROUP = "239.255.255.250"
PORT = 3702
MAX_MESSAGE = 64 * 1024
MAX_TEXT = 256
MAX_SCOPES = 32
MAX_XADDRS = 8

#: Delays (s) between repeated probes: SOAP-over-UDP's 50-250 ms first, then growing.
#: Dense in the first second, when lost probes and replies are worth recovering fast.
REPEAT_DELAYS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.8, 1.2, 2.0)

PROBE_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<s:Header>
<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>
<a:MessageID>urn:uuid:{message_id}</a:MessageID>
<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>
</s:Header>
<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>
</s:Envelope>"""


class InvalidReply(ValueError):
    """A datagram that is not an acceptable ProbeMatch; the reason is for the log."""


@dataclass(frozen=True)
class ProbeMatch:
    ref: str  # the endpoint reference: the camera's stable identity
    xaddrs: tuple[str, ...]
    address: str  # the host of the first service address (or the sender)
    scopes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    name: str | None = None
    hardware: str | None = None
    location: str | None = None
    sender: str = ""
    metadata_version: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def build_probe(message_id: str | None = None) -> bytes:
    return PROBE_TEMPLATE.format(message_id=message_id or str(uuid.uuid4())).encode("utf-8")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].split(":")[-1]


def _text(element: ET.Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _find(element: ET.Element, name: str) -> ET.Element | None:
    for child in element.iter():
        if _local(child.tag) == name:
            return child
    return None


def _clean(value: str, limit: int = MAX_TEXT) -> str:
    """Printable, bounded text: device strings end up in logs, the panel and paths."""
    cleaned = "".join(ch for ch in value if ch.isprintable())
    return cleaned[:limit]


def _scope_value(scopes: tuple[str, ...], kind: str) -> str | None:
    prefix = f"onvif://www.onvif.org/{kind}/"
    for scope in scopes:
        if scope.lower().startswith(prefix):
            value = _clean(unquote(scope[len(prefix) :]).replace("_", " "), 100)
            if value:
                return value
    return None


def _service_urls(raw: str) -> tuple[str, ...]:
    urls = []
    for token in raw.split()[: MAX_XADDRS * 4]:
        if len(token) > 512:
            continue
        parts = urlsplit(token)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        if any(ch in token for ch in "\"'`$;|&<>\\ \t\r\n"):
            continue
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            continue
        urls.append(token)
        if len(urls) >= MAX_XADDRS:
            break
    return tuple(urls)


def parse_reply(data: bytes, sender: str = "") -> list[ProbeMatch]:
    """All ProbeMatch entries in one datagram; raises ``InvalidReply``."""
    if len(data) > MAX_MESSAGE:
        raise InvalidReply(f"reply of {len(data)} bytes exceeds {MAX_MESSAGE}")
    head = data[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in data.upper():
        raise InvalidReply("reply carries a DTD (refused: SOAP forbids it, and it enables XXE)")
    try:
        root = ET.fromstring(data)  # noqa: S314 - DTDs refused above; size bounded
    except ET.ParseError as err:
        raise InvalidReply(f"malformed XML: {err}") from None
    if _local(root.tag) != "Envelope":
        raise InvalidReply("not a SOAP envelope")
    action = _text(_find(root, "Action"))
    if action and not action.rstrip("/").endswith(("ProbeMatches", "ProbeMatch")):
        raise InvalidReply(f"not a probe reply (Action {_clean(action, 100)!r})")
    matches: list[ProbeMatch] = []
    for element in root.iter():
        if _local(element.tag) != "ProbeMatch":
            continue
        ref = _clean(_text(_find(element, "Address")), 200)
        if not ref:
            continue
        xaddrs = _service_urls(_text(_find(element, "XAddrs")))
        if not xaddrs:
            continue
        scopes = tuple(_clean(s, MAX_TEXT) for s in _text(_find(element, "Scopes")).split())
        scopes = scopes[:MAX_SCOPES]
        types = tuple(_clean(t, 100) for t in _text(_find(element, "Types")).split())[:8]
        host = urlsplit(xaddrs[0]).hostname or sender
        version_text = _text(_find(element, "MetadataVersion"))
        matches.append(
            ProbeMatch(
                ref=ref,
                xaddrs=xaddrs,
                address=host,
                scopes=scopes,
                types=types,
                name=_scope_value(scopes, "name"),
                hardware=_scope_value(scopes, "hardware"),
                location=_scope_value(scopes, "location"),
                sender=sender,
                metadata_version=(
                    int(version_text)
                    if version_text.isascii() and version_text.isdigit() and len(version_text) < 10
                    else None
                ),
            )
        )
    if not matches:
        raise InvalidReply("no usable ProbeMatch (missing endpoint reference or XAddrs)")
    return matches


_ADDRESS = re.compile(rb"Address>([^<]{1,256})<")
_XADDRS = re.compile(rb"XAddrs>([^<]{1,4096})<")


def _quick_key(data: bytes) -> tuple[bytes, bytes] | None:
    """(endpoint reference, service addresses) as raw bytes, or None if unsure."""
    if len(data) > MAX_MESSAGE:
        return None
    addresses = _ADDRESS.findall(data)
    xaddrs = _XADDRS.findall(data)
    if len(xaddrs) != 1 or not addresses:
        return None
    return addresses[-1], xaddrs[0]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[bytes, str]]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.queue.qsize() < 10_000:  # a flood cannot grow memory without bound
            self.queue.put_nowait((data, str(addr[0])))

    def error_received(self, exc: Exception) -> None:  # ICMP errors: nothing to do
        return None


def _make_socket(interface: str | None, ttl: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    # a hundred cameras answer each probe within the same half second
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    if interface:
        ipaddress.IPv4Address(interface)  # validated: an address, not a name
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.bind((interface, 0))
    else:
        sock.bind(("0.0.0.0", 0))  # noqa: S104 - replies come back unicast to this port
    sock.setblocking(False)
    return sock


@dataclass
class ScanStats:
    probes_sent: int = 0
    replies: int = 0
    refused: int = 0
    first_seen: dict[str, float] = field(default_factory=dict)


async def probe(
    timeout: float,
    *,
    interface: str | None = None,
    target: tuple[str, int] = (MULTICAST_GROUP, PORT),
    ttl: int = 1,
    stats: ScanStats | None = None,
    on_refused: Any = None,
) -> AsyncIterator[ProbeMatch]:
    """Probe for ``timeout`` seconds, yielding each camera the first time it answers.

    A camera already yielded is yielded again only if its address changed
    (DHCP); its reference stays the same.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    sock = _make_socket(interface, ttl)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(queue), sock=sock)
    stats = stats if stats is not None else ScanStats()
    seen: dict[str, str] = {}
    start = time.monotonic()
    deadline = start + timeout

    async def sender() -> None:
        delays = iter(REPEAT_DELAYS)
        while True:
            transport.sendto(build_probe(), target)
            stats.probes_sent += 1
            delay = next(delays, REPEAT_DELAYS[-1])
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter

    sending = asyncio.create_task(sender())
    # cameras answer every repeated probe; a reply whose identity and service
    # addresses were already seen is skipped before any XML parsing
    known: set[tuple[bytes, bytes]] = set()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                data, host = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return
            stats.replies += 1
            key = _quick_key(data)
            if key is not None and key in known:
                continue
            try:
                matches = parse_reply(data, host)
            except InvalidReply as err:
                stats.refused += 1
                if on_refused is not None:
                    on_refused(host, str(err))
                continue
            if key is not None and len(matches) == 1:
                known.add(key)
            for match in matches:
                if seen.get(match.ref) == match.address:
                    continue
                seen[match.ref] = match.address
                stats.first_seen.setdefault(match.ref, time.monotonic() - start)
                yield match
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        transport.close()
