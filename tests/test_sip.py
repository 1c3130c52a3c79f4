"""The SIP call line (plugins/csuhub_sip): parser, PIDF-LO, transactions, sockets.

Real sockets on 127.0.0.1 against a started line; the hub's desk is a small
recording object here (the end-to-end tests against a real hub are in
tests/test_sip_hub.py). Parsers of outside input get property tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import socket
from typing import Any

import pytest
import voluptuous as vol
from csuhub_sip import SCHEMA, SipLine
from csuhub_sip.agent import caller_of
from csuhub_sip.digest import DigestAuth, parse_authorization
from csuhub_sip.message import MAX_HEAD, SipError, StreamFramer, build_response, parse_request
from csuhub_sip.pidf import LocationError, location_of, parse_pidf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.api import CallState, Location

LOGGER = "csuhub_sip"


def invite(
    call_id: str = "call-1@pbx",
    *,
    branch: str | None = None,
    method: str = "INVITE",
    cseq: int = 1,
    extra: str = "",
    body: bytes = b"",
    content_type: str | None = None,
    length: int | None = None,
    via_host: str = "127.0.0.1:5099",
    to_tag: str = "",
) -> bytes:
    branch = branch or "z9hG4bK-" + call_id.split("@")[0]
    head = (
        f"{method} sip:police@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch};rport\r\n"
        f'From: "Pbx" <sip:0320000000@pbx.example>;tag=f-{call_id[:8]}\r\n'
        f"To: <sip:police@127.0.0.1>{';tag=' + to_tag if to_tag else ''}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Max-Forwards: 70\r\n"
        f"{extra}"
        + (f"Content-Type: {content_type}\r\n" if content_type else "")
        + f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def pidf(shape: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
        'xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0" '
        'xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="pres:a@b">'
        f'<tuple id="t"><status><gp:geopriv><gp:location-info>{shape}'
        "</gp:location-info></gp:geopriv></status></tuple></presence>"
    ).encode()


def point(lat: Any, lon: Any, srs: str = "urn:ogc:def:crs:EPSG::4326") -> str:
    return f'<gml:Point srsName="{srs}"><gml:pos>{lat} {lon}</gml:pos></gml:Point>'


def circle(lat: float, lon: float, radius: Any) -> str:
    return (
        '<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{lat} {lon}</gml:pos>"
        f'<gs:radius uom="urn:ogc:def:uom:EPSG::9001">{radius}</gs:radius></gs:Circle>'
    )


# -- parser ---------------------------------------------------------------------------


def test_parse_compact_forms_folding_and_routing_headers() -> None:
    raw = (
        b"\r\nINVITE sip:police@hub SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc, SIP/2.0/TCP proxy;branch=z9hG4bKdef\r\n"
        b"f: <sip:+33612345678@pbx>;tag=x\r\nt: <sip:police@hub>\r\ni: id-1@pbx\r\n"
        b"CSeq: 4\r\n  INVITE\r\nc: text/plain\r\nl: 4\r\n\r\nbodyEXTRA"
    )
    request = parse_request(raw)
    assert (request.method, request.call_id, request.cseq) == ("INVITE", "id-1@pbx", (4, "INVITE"))
    assert request.via.branch == "z9hG4bKabc" and request.via.sent_by == "10.0.0.1:5060"
    assert request.body == b"body"  # bytes after Content-Length ignored over UDP
    assert request.from_tag == "x" and request.to_tag is None
    response = build_response(request.headers, 180, to_tag="t1", received="10.0.0.9")
    text = response.decode()
    assert text.startswith("SIP/2.0 180 Ringing\r\n")
    assert "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;received=10.0.0.9, SIP/2.0/TCP" in text
    assert "To: <sip:police@hub>;tag=t1\r\n" in text and "Call-ID: id-1@pbx\r\n" in text
    assert "CSeq: 4 INVITE\r\n" in text and text.endswith("Content-Length: 0\r\n\r\n")
    assert "tag=" not in build_response(request.headers, 100, to_tag="t1").decode().split("To:")[1]


@pytest.mark.parametrize(
    ("raw", "status", "routable", "why"),
    [
        (invite()[:60], 400, False, "truncated"),
        (invite(length=500), 400, True, "truncated body"),
        (invite(length=-1), 400, True, "malformed Content-Length"),
        (invite().replace(b"Call-ID: call-1@pbx\r\n", b""), 400, False, "missing Call-ID"),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), 400, True, "CSeq method"),
        (invite().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, True, "not SIP/2.0"),
        (invite().replace(b"Max-Forwards: 70\r\n", b"Max-Forwards 70\r\n"), 400, True, "malformed"),
        (invite().replace(b"\r\nMax", b"\nMax"), None, False, "bare CR"),
        (b"SIP/2.0 200 OK\r\n\r\n", None, False, "a response"),
        (invite(extra="X-Big: " + "a" * (MAX_HEAD + 10) + "\r\n"), 400, True, "too large"),
        (invite(extra="".join(f"X-{i}: v\r\n" for i in range(100))), 400, True, "header fields"),
    ],
)
def test_malformed_requests_raise_sip_error(
    raw: bytes, status: int | None, routable: bool, why: str
) -> None:
    with pytest.raises(SipError) as caught:
        parse_request(raw)
    assert caught.value.status == status
    assert caught.value.routable is routable
    assert why in caught.value.reason


def test_content_length_is_mandatory_over_a_stream() -> None:
    raw = invite().replace(b"Content-Length: 0\r\n", b"")
    assert parse_request(raw).body == b""
    with pytest.raises(SipError, match="mandatory"):
        parse_request(raw, stream=True)


def test_non_utf8_body_is_tolerated_outside_xml() -> None:
    request = parse_request(
        invite(body=b"\xff\xfe\x00bin", content_type="application/octet-stream")
    )
    assert request.body == b"\xff\xfe\x00bin"
    assert location_of(request) is None


def test_stream_framer_cuts_messages_and_answers_pings() -> None:
    framer = StreamFramer()
    two = invite(body=b"abc", content_type="text/plain") + b"\r\n\r\n" + invite("call-2@pbx")
    out: list[bytes] = []
    for i in range(0, len(two), 7):
        out += framer.feed(two[i : i + 7])
    assert [parse_request(m, stream=True).call_id for m in out] == ["call-1@pbx", "call-2@pbx"]
    assert framer.pings == 1
    with pytest.raises(SipError, match="too large") as caught:
        StreamFramer().feed(invite().split(b"Max-Forwards")[0] + b"X-Big: " + b"a" * 70_000)
    assert caught.value.routable


def test_caller_from_pai_then_from_and_withheld() -> None:
    pai = "P-Asserted-Identity: <sip:+33600000001@pbx;user=phone>, <tel:+33600000002>\r\n"
    assert caller_of(parse_request(invite(extra=pai))) == "+33600000002"
    assert caller_of(parse_request(invite())) == "0320000000"
    anon = "P-Asserted-Identity: <sip:anonymous@anonymous.invalid>\r\n"
    assert caller_of(parse_request(invite(extra=anon))) is None
    raw = invite().replace(b'"Pbx" <sip:0320000000@pbx.example>', b'"Anonymous" <sip:anonymous@x>')
    assert caller_of(parse_request(raw)) is None


# -- PIDF-LO --------------------------------------------------------------------------


def test_pidf_point_circle_and_civic() -> None:
    assert parse_pidf(pidf(point(50.6366, 3.0635))) == Location(lat=50.6366, lon=3.0635)
    assert parse_pidf(pidf(circle(50.6, 3.0, 42.5))) == Location(lat=50.6, lon=3.0, radius_m=42.5)
    civic = (
        "<ca:civicAddress><ca:HNO>12</ca:HNO><ca:RD>rue Esquermoise</ca:RD>"
        "<ca:PC>59800</ca:PC><ca:A3>Lille</ca:A3></ca:civicAddress>"
    )
    assert parse_pidf(pidf(civic)) == Location(address="12 rue Esquermoise 59800 Lille")
    assert parse_pidf(pidf("")) is None


@pytest.mark.parametrize(
    "document",
    [
        pidf(point(91, 3)),
        pidf(point(50, 181)),
        pidf(point("nan", 3)),
        pidf(point("x", "y")),
        pidf(point(50, 3, srs="urn:ogc:def:crs:EPSG::3857")),
        pidf(circle(50, 3, -1)),
        pidf(circle(50, 3, "inf")),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><presence/>',
        b"<presence><unclosed></presence>",
        "<presence>é</presence>".encode("latin-1"),
    ],
)
def test_pidf_invalid_points_and_unsafe_xml_are_refused(document: bytes) -> None:
    with pytest.raises(LocationError):
        parse_pidf(document)


def test_location_by_cid_reference_in_a_multipart_body() -> None:
    body = (
        b"--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"
        b"\r\n--b1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <decoy@pbx>\r\n\r\n"
        + pidf(point(48.85, 2.35))
        + b"\r\n--b1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <loc@pbx>\r\n\r\n"
        + pidf(circle(50.63, 3.06, 20))
        + b"\r\n--b1--\r\n"
    )
    request = parse_request(
        invite(
            extra="Geolocation: <cid:loc@pbx>\r\n",
            body=body,
            content_type='multipart/mixed; boundary="b1"',
        )
    )
    assert location_of(request) == Location(lat=50.63, lon=3.06, radius_m=20.0)
    missing = parse_request(
        invite(
            extra="Geolocation: <cid:nothere@pbx>\r\n",
            body=body,
            content_type="multipart/mixed; boundary=b1",
        )
    )
    with pytest.raises(LocationError, match="no body part"):
        location_of(missing)


# -- property tests -------------------------------------------------------------------

TOKENS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.booleans())
def test_parser_raises_only_its_own_error_on_random_bytes(data: bytes, stream: bool) -> None:
    try:
        parse_request(data, stream=stream)
    except SipError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parser_raises_only_its_own_error_on_mutated_messages(data: st.DataObject) -> None:
    raw = bytearray(invite(body=pidf(point(50, 3)), content_type="application/pidf+xml"))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i : i + data.draw(st.integers(0, 4))] = data.draw(st.binary(max_size=4))
    try:
        request = parse_request(bytes(raw))
    except SipError:
        return
    try:
        location_of(request)
        caller_of(request)
    except LocationError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "OPTIONS", "BYE", "CANCEL", "MESSAGE"]),
    call_id=TOKENS,
    host=TOKENS,
    cseq=st.integers(0, 2**31 - 1),
    branch=TOKENS,
    body=st.binary(max_size=300),
    compact=st.booleans(),
    splits=st.lists(st.integers(1, 50), max_size=5),
)
def test_generated_messages_round_trip(
    method: str,
    call_id: str,
    host: str,
    cseq: int,
    branch: str,
    body: bytes,
    compact: bool,
    splits: list[int],
) -> None:
    raw = invite(
        f"{call_id}@{host}", branch="z9hG4bK" + branch, method=method, cseq=cseq, body=body
    )
    if compact:
        raw = raw.replace(b"\r\nCall-ID:", b"\r\ni:").replace(b"\r\nContent-Length:", b"\r\nl:")
    request = parse_request(raw)
    assert (request.method, request.call_id, request.cseq) == (
        method,
        f"{call_id}@{host}",
        (cseq, method),
    )
    assert request.body == body and request.via.branch == "z9hG4bK" + branch
    framer, got, at = StreamFramer(), [], 0
    for size in [*splits, len(raw)]:
        got += framer.feed(raw[at : at + size])
        at += size
    assert got == [raw]
    reply = build_response(request.headers, 486, to_tag="abc").decode()
    assert f"Call-ID: {call_id}@{host}\r\n" in reply and f"CSeq: {cseq} {method}\r\n" in reply


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=1024), st.text(max_size=400).map(str.encode)))
def test_pidf_parser_raises_only_location_error(document: bytes) -> None:
    try:
        parse_pidf(document)
    except LocationError:
        pass


PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(PRINTABLE, st.sampled_from(["multipart/mixed; boundary=b", "application/pidf+xml"])),
    st.one_of(PRINTABLE, st.just("<cid:x>")),
    st.one_of(
        st.binary(max_size=600),
        st.builds(
            lambda a, b: b"--b\r\nContent-ID: <x>\r\n\r\n" + a + b"\r\n--b--" + b,
            st.binary(),
            st.binary(),
        ),
    ),
)
def test_location_of_any_body_raises_only_location_error(
    content_type: str, geolocation: str, body: bytes
) -> None:
    try:
        request = parse_request(
            invite(extra=f"Geolocation: {geolocation}\r\n", body=body, content_type=content_type)
        )
    except SipError:
        return
    try:
        location_of(request)
    except LocationError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
    st.one_of(st.none(), st.floats(0, 100_000, allow_nan=False)),
)
def test_generated_pidf_round_trips(lat: float, lon: float, radius: float | None) -> None:
    shape = point(repr(lat), repr(lon)) if radius is None else circle(lat, lon, repr(radius))
    location = parse_pidf(pidf(shape))
    assert location is not None and location.lat == lat and location.lon == lon
    assert location.radius_m == radius


# -- digest ---------------------------------------------------------------------------


def _answer(challenge: str, method: str, password: str, algorithm: str) -> str:
    params = parse_authorization(challenge)
    assert params is not None
    h = hashlib.sha256 if algorithm == "SHA-256" else hashlib.md5

    def hx(s: str) -> str:
        return h(s.encode()).hexdigest()

    uri, nc, cnonce = "sip:police@127.0.0.1", "00000001", "c0ffee"
    ha1 = hx(f"pbx:{params['realm']}:{password}")
    response = hx(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{hx(f'{method}:{uri}')}")
    return (
        f'Digest username="pbx", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, '
        f'cnonce="{cnonce}"'
    )


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_verifies_md5_and_sha256(algorithm: str) -> None:
    auth = DigestAuth("csu-lille", "s3cret", "pbx")
    uri, source = "sip:police@127.0.0.1", "10.0.0.1"
    headers = dict((v.split("algorithm=")[1].split(",")[0], v) for _, v in auth.challenge(source))
    assert set(headers) == {"MD5", "SHA-256"}
    good = _answer(headers[algorithm], "INVITE", "s3cret", algorithm)
    assert auth.verify(good, "BYE", uri, source) == "refused"
    wrong = _answer(headers[algorithm], "INVITE", "wrong", algorithm)
    assert auth.verify(wrong, "INVITE", uri, source) == "refused"
    assert auth.verify(good, "INVITE", uri, source, now=10**10) == "stale"
    assert auth.verify(good, "INVITE", uri, source) == "ok"
    assert auth.verify(None, "INVITE", uri, source) == "refused"
    assert auth.verify("Basic abc", "INVITE", uri, source) == "refused"


# -- options --------------------------------------------------------------------------


def test_schema_accepts_the_blueprint_options_and_refuses_bad_ones() -> None:
    options = SCHEMA(
        {
            "listen_host": "127.0.0.1",
            "listen_port": 5060,
            "transport": "udp",
            "allowed_peers": ["127.0.0.1"],
            "open_incident": True,
        }
    )
    assert options["transports"] == ["udp"] and options["allowed_peers"] == ["127.0.0.1/32"]
    assert SCHEMA({})["transports"] == ["udp", "tcp"]
    for bad in (
        {"allowed_peers": ["pbx.example"]},
        {"listen_host": "localhost"},
        {"answer": "ok"},
        {"require_auth": True},
        {"transport": "udp", "transports": ["tcp"]},
        {"ring_for": -1},
    ):
        with pytest.raises(vol.Invalid):
            SCHEMA(bad)


# -- the line on real sockets ---------------------------------------------------------


class Desk:
    """Records what the line reports, as hub.calls would receive it."""

    def __init__(self) -> None:
        self.reports: list[Any] = []

    async def report(self, call: Any) -> None:
        self.reports.append(call)

    def states(self, call_id: str) -> list[CallState]:
        return [r.state for r in self.reports if r.call_id == call_id]


class FakeHub:
    def __init__(self) -> None:
        self.calls = Desk()


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


async def udp_client(host: str = "127.0.0.1") -> tuple[asyncio.DatagramTransport, Udp]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Udp, local_addr=(host, 0))
    return transport, protocol


async def replies(protocol: Udp, count: int, timeout: float = 2.0) -> list[str]:
    out = []
    for _ in range(count):
        data = await asyncio.wait_for(protocol.queue.get(), timeout)
        out.append(data.decode())
    return out


async def silent(protocol: Udp, wait: float = 0.3) -> bool:
    await asyncio.sleep(wait)
    return protocol.queue.empty()


def status(reply: str) -> int:
    return int(reply.split(" ", 2)[1])


@pytest.fixture
async def line(request: pytest.FixtureRequest) -> Any:
    options = getattr(request, "param", {})
    hub = FakeHub()
    sip = SipLine(hub, "sip", SCHEMA({"listen_port": 0, "ring_for": 0, **options}))
    await sip.start()
    yield sip
    await sip.stop()


def desk(line: SipLine) -> Desk:
    return line._hub.calls


async def test_invite_rings_busies_and_resends_the_final_until_ack(line: SipLine) -> None:
    transport, client = await udp_client()
    addr = ("127.0.0.1", line.port)
    transport.sendto(invite(), addr)
    first = await replies(client, 3)
    assert [status(r) for r in first] == [100, 180, 486]
    # Timer G: the 486 comes again after T1 without an ACK
    again = await replies(client, 1, timeout=1.5)
    assert status(again[0]) == 486
    to = next(h for h in again[0].split("\r\n") if h.startswith("To:"))
    ack = invite(method="ACK").replace(b"To: <sip:police@127.0.0.1>", to.encode())
    transport.sendto(ack, addr)
    assert await silent(client, 1.2)
    await asyncio.sleep(0.05)
    assert desk(line).states("call-1@pbx") == [CallState.RINGING]
    transport.close()


@pytest.mark.parametrize("line", [{"answer": "observe"}], indirect=True)
async def test_retransmitted_invite_is_one_call_and_cancel_reports_the_state(line: SipLine) -> None:
    transport, client = await udp_client()
    addr = ("127.0.0.1", line.port)
    for _ in range(3):
        transport.sendto(invite(), addr)
    got = await replies(client, 4)
    assert [status(r) for r in got] == [100, 180, 180, 180]
    transport.sendto(invite(method="CANCEL"), addr)
    got = await replies(client, 2)
    assert sorted(status(r) for r in got) == [200, 487]
    transport.sendto(invite("call-2@pbx", branch="z9hG4bK-2"), addr)
    await replies(client, 2)
    cancel = invite(
        "call-2@pbx", branch="z9hG4bK-2", method="CANCEL", extra="Reason: SIP;cause=200\r\n"
    )
    transport.sendto(cancel, addr)
    await replies(client, 2)
    await asyncio.sleep(0.05)
    assert desk(line).states("call-1@pbx") == [CallState.RINGING, CallState.ABANDONED]
    assert desk(line).states("call-2@pbx") == [CallState.RINGING, CallState.ANSWERED]
    assert line.agent is not None and line.agent.retransmissions == 2
    # a CANCEL of nothing, a BYE of a known call (no dialog: the hub never
    # answered it) and of an unknown one, OPTIONS, others
    transport.sendto(invite("nope@pbx", branch="z9hG4bK-9", method="CANCEL"), addr)
    transport.sendto(invite(branch="z9hG4bK-3", method="BYE", cseq=2), addr)
    transport.sendto(invite("x@pbx", branch="z9hG4bK-4", method="BYE"), addr)
    transport.sendto(invite("o@pbx", branch="z9hG4bK-5", method="OPTIONS"), addr)
    transport.sendto(invite("r@pbx", branch="z9hG4bK-6", method="REGISTER"), addr)
    transport.sendto(invite("q@pbx", branch="z9hG4bK-7", method="FROBNICATE"), addr)
    got = await replies(client, 6)
    assert [status(r) for r in got] == [481, 481, 481, 200, 405, 501]
    assert "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS" in got[3]
    await asyncio.sleep(0.05)
    assert desk(line).states("call-1@pbx") == [CallState.RINGING, CallState.ABANDONED]
    transport.close()


MALFORMED = {
    "truncated": invite()[:80],
    "wrong Content-Length": invite(length=400),
    "64 KiB header": invite(extra="X-Big: " + "a" * 60_000 + "\r\n"),
    "missing Call-ID": invite().replace(b"Call-ID: call-1@pbx\r\n", b""),
    "invalid point": invite(
        "badloc@pbx",
        branch="z9hG4bK-badloc",
        body=pidf(point(123, 3)),
        content_type="application/pidf+xml",
        extra="Geolocation: <cid:x@pbx>\r\n",
    ),
    "non-UTF-8 PIDF-LO": invite(
        "badenc@pbx",
        branch="z9hG4bK-badenc",
        body=b"<presence>\xff\xfe</presence>",
        content_type="application/pidf+xml",
    ),
}


async def test_malformed_udp_each_answered_400_or_dropped_once_logged(
    line: SipLine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    transport, client = await udp_client()
    addr = ("127.0.0.1", line.port)
    expected = {
        "truncated": None,
        "wrong Content-Length": 400,
        "64 KiB header": 400,
        "missing Call-ID": None,
        "invalid point": 400,
        "non-UTF-8 PIDF-LO": 400,
    }
    for name, raw in MALFORMED.items():
        for _ in range(3):  # the repeats are not logged again
            transport.sendto(raw, addr)
        if expected[name] is None:
            assert await silent(client, 0.15), name
            continue
        await asyncio.sleep(0.2)
        got = []
        while not client.queue.empty():
            got.append(client.queue.get_nowait().decode())
        finals = [status(r) for r in got if status(r) >= 200]
        assert len(finals) == 3 and set(finals) == {expected[name]}, (name, got)
        if name in ("invalid point", "non-UTF-8 PIDF-LO"):
            assert "Bad Location Information" in got[-1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "malformed SIP" in w]) == 4, warnings
    # one kind of refusal, whatever the location's fault (the key is fixed, the
    # fault only in the message): logged once for this source
    assert len([w for w in warnings if "bad location" in w]) == 1, warnings
    # the incident still opens for a call whose location was refused, without it
    await asyncio.sleep(0.05)
    bad = [r for r in desk(line).reports if r.call_id == "badloc@pbx"]
    assert len(bad) == 1 and bad[0].location is None and "location refused" in bad[0].text
    transport.sendto(invite("next@pbx", branch="z9hG4bK-next"), addr)
    assert [status(r) for r in await replies(client, 3)] == [100, 180, 486]
    transport.close()


async def tcp_exchange(port: int, data: bytes, *, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
    writer.write(data)
    try:
        got = await asyncio.wait_for(reader.read(65536), 2.0)
        more = got
        while more and got.count(b"\r\n\r\n") < 3:
            more = await asyncio.wait_for(reader.read(65536), 1.0)
            got += more
    finally:
        writer.close()
    return got


async def test_tcp_call_and_malformed_stream_closes(
    line: SipLine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    got = await tcp_exchange(line.port, invite().replace(b"UDP", b"TCP"))
    assert [status(r) for r in got.decode().split("\r\n\r\n") if r] == [100, 180, 486]
    no_length = invite("tcp2@pbx").replace(b"Content-Length: 0\r\n", b"")
    got = await tcp_exchange(line.port, no_length)
    assert got.startswith(b"SIP/2.0 400 ")
    big = invite("tcp3@pbx").split(b"Max-Forwards")[0] + b"X-Big: " + b"a" * 65_536 + b"\r\n\r\n"
    got = await tcp_exchange(line.port, big)
    assert got.startswith(b"SIP/2.0 400 ")
    truncated = invite("tcp4@pbx", length=100)
    reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
    writer.write(truncated)
    await writer.drain()
    assert await silent_stream(reader)
    writer.close()
    got = await tcp_exchange(line.port, invite("tcp5@pbx").replace(b"UDP", b"TCP"))
    assert status(got.decode()) == 100


async def silent_stream(reader: asyncio.StreamReader) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), 0.3)
    except TimeoutError:
        return True
    return False


def _loopback_alias_works() -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _loopback_alias_works(), reason="127.0.0.2 not bindable")
@pytest.mark.parametrize("line", [{"allowed_peers": ["127.0.0.1/32"]}], indirect=True)
async def test_flood_from_a_disallowed_address_is_dropped_and_logged_once(
    line: SipLine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    transport, client = await udp_client("127.0.0.2")
    for i in range(300):
        transport.sendto(invite(f"flood{i}@x", branch=f"z9hG4bK-f{i}"), ("127.0.0.1", line.port))
    assert await silent(client, 0.3)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError)):
        got = await tcp_exchange(line.port, invite(), host="127.0.0.2")
        if not got:
            raise ConnectionResetError("closed")
    refused = [r for r in caplog.records if "outside allowed_peers" in r.getMessage()]
    assert len(refused) == 1 and "127.0.0.2" in refused[0].getMessage()
    assert desk(line).reports == []
    ok, ok_client = await udp_client()
    ok.sendto(invite("valid@pbx"), ("127.0.0.1", line.port))
    assert [status(r) for r in await replies(ok_client, 3)] == [100, 180, 486]
    transport.close()
    ok.close()


@pytest.mark.parametrize(
    "line",
    [{"require_auth": True, "realm": "csu", "password": "pw", "username": "pbx"}],
    indirect=True,
)
async def test_require_auth_challenges_then_accepts(line: SipLine) -> None:
    transport, client = await udp_client()
    addr = ("127.0.0.1", line.port)
    transport.sendto(invite(), addr)
    (challenge,) = await replies(client, 1)
    assert status(challenge) == 401
    offered = [
        h.split(": ", 1)[1] for h in challenge.split("\r\n") if h.startswith("WWW-Authenticate")
    ]
    assert len(offered) == 2 and "algorithm=SHA-256" in offered[0]
    await asyncio.sleep(0.05)
    assert desk(line).reports == []
    authorization = _answer(offered[0], "INVITE", "pw", "SHA-256")
    transport.sendto(
        invite(branch="z9hG4bK-2", cseq=2, extra=f"Authorization: {authorization}\r\n"), addr
    )
    got = [r for r in await replies(client, 4) if status(r) != 401]
    assert [status(r) for r in got][:3] == [100, 180, 486]
    await asyncio.sleep(0.05)
    assert len(desk(line).reports) == 1
    transport.close()


def test_radius_math_is_finite() -> None:
    # a Circle's radius is metres; an absurd one is refused rather than clamped
    with pytest.raises(LocationError):
        parse_pidf(pidf(circle(50, 3, 1e9)))
    assert math.isfinite(parse_pidf(pidf(circle(50, 3, 0))).radius_m or 0.0)
