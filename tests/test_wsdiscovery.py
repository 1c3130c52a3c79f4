"""WS-Discovery: lenient with sloppy cameras, hard on hostile ones.

Probes go unicast to responders on 127.0.0.1 here; the multicast path is
exercised inside a network namespace in test_cameras_onvif.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from csuhub_onvif import wsdiscovery as wsd
from peers.wsd_responder import SINGLE, STANDARD, Camera, start_unicast


def reply(template: str, **kw: Any) -> bytes:
    values = {
        "reply_id": 1,
        "relates": "urn:uuid:1",
        "ref": "urn:uuid:cam-1",
        "xaddrs": "http://10.0.0.5:8080/onvif/device_service",
        "name": "Grand_Place",
        "hardware": "IPC-1",
    }
    values.update(kw)
    return template.format(**values).encode()


def test_standard_and_single_forms() -> None:
    (standard,) = wsd.parse_reply(reply(STANDARD), "10.0.0.5")
    assert standard.ref == "urn:uuid:cam-1"
    assert standard.address == "10.0.0.5"
    assert standard.name == "Grand Place" and standard.hardware == "IPC-1"
    assert standard.location == "city/Lille"
    assert standard.xaddrs == ("http://10.0.0.5:8080/onvif/device_service",)
    (single,) = wsd.parse_reply(reply(SINGLE, ref="urn:uuid:ipycam"), "10.0.0.6")
    assert single.ref == "urn:uuid:ipycam" and single.name == "Grand Place"


def test_several_matches_in_one_reply() -> None:
    data = reply(STANDARD).replace(
        b"</d:ProbeMatches>",
        b"<d:ProbeMatch><wsa:EndpointReference><wsa:Address>urn:uuid:cam-2</wsa:Address>"
        b"</wsa:EndpointReference><d:XAddrs>http://10.0.0.7/onvif/device_service</d:XAddrs>"
        b"</d:ProbeMatch></d:ProbeMatches>",
    )
    assert [m.ref for m in wsd.parse_reply(data)] == ["urn:uuid:cam-1", "urn:uuid:cam-2"]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><ProbeMatch>
<Address>&x;</Address><XAddrs>http://10.0.0.5/onvif</XAddrs></ProbeMatch></s:Body></s:Envelope>"""

LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>"""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (XXE, "DTD"),
        (LAUGHS, "DTD"),
        (b"<s:Envelope><unclosed>", "malformed XML"),
        (b"\x00\xff garbage", "malformed XML"),
        (b"<html><body>hi</body></html>", "not a SOAP envelope"),
        (b"x" * (wsd.MAX_MESSAGE + 1), "exceeds"),
        (reply(STANDARD, xaddrs="http://10.0.0.5/$(reboot)"), "no usable ProbeMatch"),
        (reply(STANDARD, xaddrs="file:///etc/passwd"), "no usable ProbeMatch"),
        (reply(STANDARD, xaddrs="http://10.0.0.5:99999/x"), "no usable ProbeMatch"),
        (reply(STANDARD, ref=""), "no usable ProbeMatch"),
        (
            reply(STANDARD).replace(b"ProbeMatches</wsa:Action>", b"Hello</wsa:Action>"),
            "not a probe reply",
        ),
    ],
)
def test_hostile_replies_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(wsd.InvalidReply, match=reason):
        wsd.parse_reply(data, "10.0.0.66")


def test_hostile_text_is_sanitised() -> None:
    evil_name = "%24(rm%20-rf%20%2F)%3B%0Aevil" + "A" * 500
    (match,) = wsd.parse_reply(
        reply(
            STANDARD,
            name=evil_name,
            xaddrs="http://10.0.0.5/a http://10.0.0.5/b;ls rtsp://10.0.0.5/x https://10.0.0.5/c",
        )
    )
    assert match.name is not None and len(match.name) <= 100
    assert "\n" not in match.name
    assert match.xaddrs == ("http://10.0.0.5/a", "https://10.0.0.5/c")


async def collect(
    port: int, timeout: float, **kw: Any
) -> tuple[list[wsd.ProbeMatch], wsd.ScanStats]:
    stats = wsd.ScanStats()
    found = [m async for m in wsd.probe(timeout, target=("127.0.0.1", port), stats=stats, **kw)]
    return found, stats


async def test_probe_streams_and_dedupes_against_a_real_responder() -> None:
    camera = Camera("urn:uuid:cam-1", "http://127.0.0.1:8080/onvif/device_service")
    transport, protocol, port = await start_unicast(camera)
    try:
        found, stats = await collect(port, 0.8)
    finally:
        transport.close()
    assert [m.ref for m in found] == ["urn:uuid:cam-1"]  # answered every probe, yielded once
    assert protocol.probes >= 3 and stats.probes_sent >= 3
    assert stats.first_seen["urn:uuid:cam-1"] < 0.1  # as it answered, not after the wait


async def test_lost_probes_are_recovered_by_retransmission() -> None:
    camera = Camera("urn:uuid:lossy", "http://127.0.0.1:8080/onvif/device_service")
    transport, protocol, port = await start_unicast(camera)
    dropped = 0
    original = protocol.datagram_received

    def lossy(data: bytes, addr: tuple[str, int]) -> None:
        nonlocal dropped
        if dropped < 2:
            dropped += 1
            return
        original(data, addr)

    protocol.datagram_received = lossy  # type: ignore[method-assign]
    try:
        found, _ = await collect(port, 1.5)
    finally:
        transport.close()
    assert [m.ref for m in found] == ["urn:uuid:lossy"]


async def test_garbage_does_not_stop_the_scan_and_moved_camera_is_reported() -> None:
    hostile = Camera("x", "x", form="raw", raw=XXE)
    good = Camera("urn:uuid:good", "http://127.0.0.1:8080/onvif/device_service")
    t1, _, bad_port = await start_unicast(hostile)
    t2, _, good_port = await start_unicast(good)
    refused: list[str] = []
    try:
        # the same probe socket gets both: send to the hostile one, then the good one
        stats = wsd.ScanStats()
        found = []
        async for m in wsd.probe(
            0.5,
            target=("127.0.0.1", bad_port),
            stats=stats,
            on_refused=lambda host, why: refused.append(why),
        ):
            found.append(m)
        assert not found and stats.refused >= 1 and "DTD" in refused[0]
        found = []
        seen_addresses = []
        async for m in wsd.probe(1.0, target=("127.0.0.1", good_port)):
            found.append(m)
            seen_addresses.append(m.address)
            if len(found) == 1:  # DHCP gives the camera a new address mid-scan
                good.xaddrs = "http://127.0.0.2:8080/onvif/device_service"
        assert [m.ref for m in found] == ["urn:uuid:good", "urn:uuid:good"]
        assert seen_addresses == ["127.0.0.1", "127.0.0.2"]
    finally:
        t1.close()
        t2.close()
    await asyncio.sleep(0)
