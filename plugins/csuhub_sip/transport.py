"""The line's sockets: one UDP endpoint and one TCP server on the same port.

The source address is checked before a byte is parsed: a datagram from
outside ``allowed_peers`` is dropped and a TCP connection from outside is
closed at once, each source logged once (per window, see ``notes``). TCP
connections are bounded in number (:data:`MAX_CONNECTIONS`, and
:data:`MAX_PER_SOURCE` from one address) and closed when idle, and their byte
stream is cut by :class:`~.message.StreamFramer`; after a malformed message
the connection is closed, since its framing can no longer be trusted.

A TCP peer that sends requests but never reads the responses would grow the
line's write buffer without limit: when the transport asks to pause writing,
the connection stops reading (no more requests, so no more responses) until
it drains, and a connection whose unsent responses still pass
:data:`MAX_WRITE_BUFFER` (one read's worth of requests can answer more than
the high-water mark) is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import cast

from .message import SipError, StreamFramer
from .notes import OnceLog
from .transactions import Peer

_LOGGER = logging.getLogger(__name__)

MAX_CONNECTIONS = 128
MAX_PER_SOURCE = 16
MAX_WRITE_BUFFER = 512 * 1024
IDLE_TIMEOUT = 300.0
#: a bound on the per-address decisions remembered (a spoofed flood varies it)
MAX_DECISIONS = 4096

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Receiver = Callable[[bytes, Peer, float], bool]
Refuser = Callable[[SipError, Peer], None]


class PeerFilter:
    def __init__(self, networks: Sequence[Network], once: OnceLog) -> None:
        self._networks = tuple(networks)
        self._decided: dict[str, bool] = {}
        self._once = once

    def allows(self, host: str) -> bool:
        verdict = self._decided.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                verdict = False
            else:
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                    address = address.ipv4_mapped
                verdict = any(address in net for net in self._networks)
            if len(self._decided) >= MAX_DECISIONS:
                self._decided.clear()
            self._decided[host] = verdict
        if not verdict:
            self._once.note("SIP from a source outside allowed_peers refused", host)
        return verdict


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receive: Receiver, peers: PeerFilter) -> None:
        self._receive = receive
        self._peers = peers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (not an isinstance check: 3.11's selector transport is no DatagramTransport subclass)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        arrived = time.time()
        host, port = addr[0], addr[1]
        if not self._peers.allows(host):
            return
        if data.strip(b"\r\n") == b"":
            return  # an RFC 5626 keep-alive
        transport = self.transport
        assert transport is not None
        peer = Peer(host, port, False, lambda out: transport.sendto(out, addr))
        try:
            self._receive(data, peer, arrived)
        except Exception:  # one bad message must not stop the line
            _LOGGER.exception("SIP message from %s could not be handled", host)

    def error_received(self, exc: Exception) -> None:
        _LOGGER.debug("SIP UDP socket error: %s", exc)


class _Stream(asyncio.Protocol):
    def __init__(self, server: SipTransports) -> None:
        self._server = server
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self._idle: asyncio.TimerHandle | None = None
        self.host = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        server = self._server
        if not server.peers.allows(host):
            transport.abort()
            return
        if len(server.connections) >= MAX_CONNECTIONS:
            server.once.note("too many SIP TCP connections, closing", host)
            transport.abort()
            return
        if sum(1 for c in server.connections if c.host == host) >= MAX_PER_SOURCE:
            server.once.note("too many SIP TCP connections from one source, closing", host)
            transport.abort()
            return
        self.host = host
        server.connections.add(self)
        self._peer = Peer(host, port, True, self._write)
        self._touch()

    def _write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        self._transport.write(data)
        if self._transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self._server.once.note("SIP TCP peer does not read its responses, closing", self.host)
            self._transport.abort()

    def pause_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._server.idle_timeout, self.close)

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        peer = self._peer
        if peer is None or self._transport is None:
            return
        self._touch()
        pings = self._framer.pings
        try:
            messages = self._framer.feed(data)
        except SipError as error:
            self._server.refuse(error, peer)
            self.close()
            return
        if self._framer.pings != pings:
            try:
                self._write(b"\r\n")  # RFC 5626 §4.4.1 pong
            except ConnectionResetError:
                return
        for message in messages:
            if self._transport.is_closing():
                return  # closed for not reading its answers: the rest is not served
            try:
                ok = self._server.receive(message, peer, arrived)
            except Exception:
                _LOGGER.exception("SIP message from %s could not be handled", peer.host)
                ok = False
            if not ok:
                self.close()
                return

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._server.connections.discard(self)


class SipTransports:
    """UDP and/or TCP listeners for one line, on one port."""

    def __init__(
        self,
        host: str,
        port: int,
        transports: Sequence[str],
        peers: PeerFilter,
        receive: Receiver,
        refuse: Refuser,
        once: OnceLog,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.kinds = tuple(transports)
        self.peers = peers
        self.receive = receive
        self.refuse = refuse
        self.once = once
        self.idle_timeout = idle_timeout
        self.connections: set[_Stream] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> int:
        """Bind; with port 0 both transports get the same ephemeral port."""
        loop = asyncio.get_running_loop()
        for _attempt in range(20):
            port = self.port
            try:
                if "udp" in self.kinds:
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda: _Datagrams(self.receive, self.peers),
                        local_addr=(self.host, port),
                    )
                    self._udp = transport
                    port = transport.get_extra_info("sockname")[1]
                if "tcp" in self.kinds:
                    self._tcp = await loop.create_server(
                        lambda: _Stream(self), self.host, port, reuse_address=True
                    )
                    port = self._tcp.sockets[0].getsockname()[1]
            except OSError:
                await self.stop()
                if self.port != 0:
                    raise
                continue  # the UDP port's TCP twin was taken: draw again
            self.port = port
            return port
        raise OSError("no port free for both UDP and TCP")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for connection in list(self.connections):
                connection.close()
            await self._tcp.wait_closed()
            self._tcp = None
