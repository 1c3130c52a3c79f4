"""A WS-Discovery responder: answers Probes like a camera does (or like a hostile one).

Used by the tests (unicast on 127.0.0.1, or multicast inside a namespace)
and by bench/discovery.py (100 of them in one namespace, sharing port 3702
through SO_REUSEPORT; multicast reaches every member socket).
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

GROUP = "239.255.255.250"

STANDARD = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<SOAP-ENV:Header>
<wsa:MessageID>urn:uuid:{reply_id}</wsa:MessageID>
<wsa:RelatesTo>{relates}</wsa:RelatesTo>
<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
</SOAP-ENV:Header>
<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>{ref}</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/{name}
 onvif://www.onvif.org/hardware/{hardware} onvif://www.onvif.org/location/city/Lille</d:Scopes>
<d:XAddrs>{xaddrs}</d:XAddrs>
<d:MetadataVersion>1</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"""

# ipycam's form: Action .../ProbeMatch and no ProbeMatches wrapper
SINGLE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatch</a:Action>
<a:RelatesTo>{relates}</a:RelatesTo></s:Header>
<s:Body><d:ProbeMatch>
<a:EndpointReference><a:Address>{ref}</a:Address></a:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types>
<d:Scopes>onvif://www.onvif.org/name/{name}</d:Scopes>
<d:XAddrs>{xaddrs}</d:XAddrs>
</d:ProbeMatch></s:Body></s:Envelope>"""

_MESSAGE_ID = re.compile(rb"MessageID>([^<]{1,200})<")


@dataclass
class Camera:
    ref: str
    xaddrs: str
    name: str = "Camera"
    hardware: str = "SimCam"
    form: str = "standard"  # standard | single | raw
    raw: bytes = b""


class ResponderProtocol(asyncio.DatagramProtocol):
    def __init__(
        self,
        camera: Camera,
        *,
        delay: tuple[float, float] = (0.0, 0.0),
        loss: float = 0.0,
        rng: random.Random | None = None,
        on_probe: Callable[[], None] | None = None,
    ) -> None:
        self.camera = camera
        self.delay = delay
        self.loss = loss
        self.rng = rng or random.Random()
        self.on_probe = on_probe
        self.transport: asyncio.DatagramTransport | None = None
        self.probes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if b"Probe" not in data:
            return
        self.probes += 1
        if self.on_probe:
            self.on_probe()
        if self.rng.random() < self.loss:  # the probe is lost on the way in
            return
        match = _MESSAGE_ID.search(data)
        relates = match.group(1).decode() if match else "urn:uuid:0"
        wait = self.rng.uniform(*self.delay)
        asyncio.get_running_loop().call_later(wait, self._reply, relates, addr)

    def _reply(self, relates: str, addr: tuple[str, int]) -> None:
        if self.transport is None or self.rng.random() < self.loss:  # lost on the way out
            return
        self.transport.sendto(self.payload(relates), addr)

    def payload(self, relates: str) -> bytes:
        c = self.camera
        if c.form == "raw":
            return c.raw
        template = SINGLE if c.form == "single" else STANDARD
        return template.format(
            reply_id=self.rng.getrandbits(64),
            relates=relates,
            ref=c.ref,
            xaddrs=c.xaddrs,
            name=c.name,
            hardware=c.hardware,
        ).encode()


async def start_unicast(
    camera: Camera, host: str = "127.0.0.1", **kw: object
) -> tuple[asyncio.DatagramTransport, ResponderProtocol, int]:
    """A responder on host:<free port>, for a probe sent to that port directly."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: ResponderProtocol(camera, **kw), local_addr=(host, 0)
    )  # type: ignore[arg-type]
    port = transport.get_extra_info("sockname")[1]
    return transport, protocol, port  # type: ignore[return-value]


def multicast_socket(interface: str = "0.0.0.0") -> socket.socket:
    """A socket on 3702 in the WS-Discovery group, shareable by many responders.

    Call only inside a network namespace a test created.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("", 3702))
    membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.setblocking(False)
    return sock


async def start_multicast(
    camera: Camera, interface: str = "0.0.0.0", **kw: object
) -> tuple[asyncio.DatagramTransport, ResponderProtocol]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: ResponderProtocol(camera, **kw), sock=multicast_socket(interface)
    )  # type: ignore[arg-type]
    return transport, protocol  # type: ignore[return-value]
