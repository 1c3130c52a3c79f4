"""The SIP line under the review of issue 13: dialogs it never made, replayed
credentials, transaction floods, log floods, TCP peers that never read, a leg
left ringing, and RFC details (CANCEL's To tag, Require, cid: escapes,
header values with control characters).

Real sockets on 127.0.0.1 against a started line, as in tests/test_sip.py
(whose helpers are reused).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from typing import Any

import pytest
from csuhub_sip import SCHEMA, SipLine
from csuhub_sip.digest import DigestAuth, parse_authorization
from csuhub_sip.message import SipError, parse_request, partial_headers
from csuhub_sip.notes import OnceLog
from csuhub_sip.pidf import location_of
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sip import (
    LOGGER,
    FakeHub,
    circle,
    desk,
    invite,
    pidf,
    point,
    replies,
    silent,
    status,
    udp_client,
)

from csuhub.api import CallState, Location

URI = "sip:police@127.0.0.1"


async def started(**options: Any) -> SipLine:
    sip = SipLine(FakeHub(), "sip", SCHEMA({"listen_port": 0, "ring_for": 0, **options}))
    await sip.start()
    return sip


def to_header(reply: str) -> str:
    return next(h for h in reply.split("\r\n") if h.startswith("To:"))


def header(reply: str, name: str) -> list[str]:
    return [h.split(":", 1)[1].strip() for h in reply.split("\r\n") if h.startswith(name + ":")]


# -- M1: BYE without a dialog --------------------------------------------------------


@pytest.mark.parametrize("answer", ["busy", "observe"])
async def test_bye_for_a_call_never_answered_is_481_and_reports_nothing(answer: str) -> None:
    sip = await started(answer=answer)
    transport, client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        transport.sendto(invite("bye1@pbx"), addr)
        got = await replies(client, 3 if answer == "busy" else 2)
        if answer == "busy":
            ack = invite("bye1@pbx", method="ACK").replace(
                b"To: <sip:police@127.0.0.1>", to_header(got[-1]).encode()
            )
            transport.sendto(ack, addr)
        bye = invite("bye1@pbx", branch="z9hG4bK-bye1", method="BYE", cseq=2)
        transport.sendto(
            bye.replace(b"To: <sip:police@127.0.0.1>", to_header(got[-1]).encode()), addr
        )
        (answer_to_bye,) = await replies(client, 1)
        assert status(answer_to_bye) == 481
        await asyncio.sleep(0.05)
        assert desk(sip).states("bye1@pbx") == [CallState.RINGING]
    finally:
        transport.close()
        await sip.stop()


# -- M2: digest replay ---------------------------------------------------------------


def _authorization(
    challenge: str, *, nc: int = 1, uri: str = URI, method: str = "INVITE", pw: str = "pw"
) -> str:
    p = parse_authorization(challenge)
    assert p is not None
    algorithm = "SHA-256" if "SHA-256" in challenge else "MD5"
    h = hashlib.sha256 if algorithm == "SHA-256" else hashlib.md5

    def hx(s: str) -> str:
        return h(s.encode()).hexdigest()

    count = f"{nc:08x}"
    ha1 = hx(f"pbx:{p['realm']}:{pw}")
    response = hx(f"{ha1}:{p['nonce']}:{count}:c0ffee:auth:{hx(f'{method}:{uri}')}")
    return (
        f'Digest username="pbx", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={count}, cnonce="c0ffee"'
    )


def _offered(auth: DigestAuth, source: str, now: float | None = None, md5: bool = False) -> str:
    values = [v for _, v in auth.challenge(source, now=now)]
    return values[1] if md5 else values[0]


async def test_replayed_authorization_on_a_new_call_is_refused_over_udp() -> None:
    sip = await started(require_auth=True, password="pw")
    transport, client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        transport.sendto(invite("a1@pbx"), addr)
        (challenge,) = await replies(client, 1)
        offered = header(challenge, "WWW-Authenticate")[1]  # MD5, as most trunks
        auth = _authorization(offered)
        transport.sendto(
            invite("a2@pbx", branch="z9hG4bK-a2", extra=f"Authorization: {auth}\r\n"), addr
        )
        assert [status(r) for r in await replies(client, 3)] == [100, 180, 486]
        for i in range(3):  # a captured header on brand-new calls
            forged = invite(
                f"forged{i}@evil", branch=f"z9hG4bK-f{i}", extra=f"Authorization: {auth}\r\n"
            )
            transport.sendto(forged, addr)
            (refused,) = await replies(client, 1)
            assert status(refused) == 401 and "stale=true" in refused
        # the PBX itself reuses its nonce with the next count: accepted
        again = _authorization(offered, nc=2)
        transport.sendto(
            invite("a3@pbx", branch="z9hG4bK-a3", extra=f"Authorization: {again}\r\n"), addr
        )
        assert [status(r) for r in await replies(client, 3)] == [100, 180, 486]
        await asyncio.sleep(0.05)
        assert sorted(r.call_id for r in desk(sip).reports) == ["a2@pbx", "a3@pbx"]
    finally:
        transport.close()
        await sip.stop()


def test_digest_binds_uri_source_count_and_a_short_lifetime() -> None:
    auth = DigestAuth("csu", "pw", "pbx")
    offered = _offered(auth, "10.0.0.1", now=1000.0)
    good = _authorization(offered)
    # another source cannot use a nonce issued to this one
    assert auth.verify(good, "INVITE", URI, "10.0.0.2", now=1001.0) == "refused"
    # the digest is over another Request-URI than the request's
    assert auth.verify(good, "INVITE", "sip:other@127.0.0.1", "10.0.0.1", now=1001.0) == "refused"
    assert auth.verify(good, "INVITE", URI, "10.0.0.1", now=1001.0) == "ok"
    assert auth.verify(good, "INVITE", URI, "10.0.0.1", now=1002.0) == "stale"  # nc again
    assert auth.verify(_authorization(offered, nc=3), "INVITE", URI, "10.0.0.1", now=1003.0) == "ok"
    assert (
        auth.verify(_authorization(offered, nc=2), "INVITE", URI, "10.0.0.1", now=1004.0) == "stale"
    )
    late = _authorization(_offered(auth, "10.0.0.1", now=2000.0))
    assert auth.verify(late, "INVITE", URI, "10.0.0.1", now=2000.0 + 61) == "stale"
    wrong = _authorization(_offered(auth, "10.0.0.1", now=3000.0), pw="nope")
    assert auth.verify(wrong, "INVITE", URI, "10.0.0.1", now=3001.0) == "refused"
    # two challenges in the same second are different nonces
    assert _offered(auth, "10.0.0.1", now=5.0) != _offered(auth, "10.0.0.1", now=5.0)


def test_digest_forgets_counts_fail_closed() -> None:
    auth = DigestAuth("csu", "pw", "pbx", max_nonces=4)
    first = _authorization(_offered(auth, "10.0.0.1", now=100.0))
    assert auth.verify(first, "INVITE", URI, "10.0.0.1", now=100.0) == "ok"
    for i in range(6):  # newer nonces push the first one's count out of the table
        later = _authorization(_offered(auth, "10.0.0.1", now=101.0 + i))
        assert auth.verify(later, "INVITE", URI, "10.0.0.1", now=101.0 + i) == "ok"
    # its count is forgotten, so its replay is not taken as new
    assert auth.verify(first, "INVITE", URI, "10.0.0.1", now=108.0) == "stale"


# -- M3: transaction floods ----------------------------------------------------------


async def test_options_flood_leaves_room_for_invites() -> None:
    sip = await started(max_transactions=16)
    transport, client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        for i in range(16):
            transport.sendto(invite(f"o{i}@x", branch=f"z9hG4bK-o{i}", method="OPTIONS"), addr)
        got = [status(r) for r in await replies(client, 16)]
        assert 503 in got  # the non-INVITE share is bounded
        transport.sendto(invite("real@pbx"), addr)
        assert [status(r) for r in await replies(client, 3)] == [100, 180, 486]
        await asyncio.sleep(0.05)
        assert desk(sip).states("real@pbx") == [CallState.RINGING]
    finally:
        transport.close()
        await sip.stop()


async def test_every_new_invite_is_reported_even_when_answered_503() -> None:
    sip = await started(max_transactions=16, answer="observe")
    transport, client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        for i in range(24):
            transport.sendto(invite(f"c{i}@pbx", branch=f"z9hG4bK-c{i}"), addr)
        await asyncio.sleep(0.3)
        got = []
        while not client.queue.empty():
            got.append(status(client.queue.get_nowait().decode()))
        assert 503 in got and 180 in got
        await asyncio.sleep(0.05)
        assert sorted(r.call_id for r in desk(sip).reports) == sorted(
            f"c{i}@pbx" for i in range(24)
        )
        assert all(r.state == CallState.RINGING for r in desk(sip).reports)
    finally:
        transport.close()
        await sip.stop()


def _alias_works(host: str = "127.0.0.2") -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _alias_works(), reason="127.0.0.2 not bindable")
async def test_one_source_cannot_take_the_others_share() -> None:
    sip = await started(max_transactions=16, allowed_peers=["127.0.0.0/8"])
    flood, flood_client = await udp_client("127.0.0.2")
    pbx, pbx_client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        for i in range(8):
            flood.sendto(invite(f"o{i}@x", branch=f"z9hG4bK-o{i}", method="OPTIONS"), addr)
        assert 503 in [status(r) for r in await replies(flood_client, 8)]
        pbx.sendto(invite("k@pbx", branch="z9hG4bK-k", method="OPTIONS"), addr)
        assert [status(r) for r in await replies(pbx_client, 1)] == [200]
    finally:
        flood.close()
        pbx.close()
        await sip.stop()


# -- S3: logging under a flood -------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_once_log_caps_lines_per_window_and_summarises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="once-test")
    clock = Clock()
    once = OnceLog(logging.getLogger("once-test"), clock=clock)
    for i in range(2000):
        once.note("SIP from a source outside allowed_peers refused", f"10.{i // 250}.{i % 250}.1")
    lines = [r.getMessage() for r in caplog.records]
    assert 1 <= len(lines) <= 20
    clock.now += 61
    once.note("SIP from a source outside allowed_peers refused", "10.99.0.1")
    summary = [m for m in (r.getMessage() for r in caplog.records) if "suppressed" in m]
    assert (
        summary and f"{2000 - len(lines)} refusals from {2000 - len(lines)} sources" in summary[0]
    )
    assert (
        len(once.counts) == 1
        and once.counts["SIP from a source outside allowed_peers refused"] == 2001
    )


def test_once_log_counts_map_is_bounded() -> None:
    once = OnceLog(logging.getLogger("once-test"), clock=Clock())
    for i in range(5000):
        once.note(f"kind {i}", "10.0.0.1")
    assert len(once.counts) <= 65


@pytest.mark.skipif(not _alias_works("127.0.1.250"), reason="127.0.x.y not bindable")
async def test_refusals_from_many_sources_are_rate_capped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sip = await started(allowed_peers=["127.0.0.1/32"])
    socks = []
    try:
        for i in range(400):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((f"127.0.{2 + i // 250}.{1 + i % 250}", 0))
            socks.append(s)
        for _round in range(2):
            for j, s in enumerate(socks):
                s.sendto(b"OPTIONS x", ("127.0.0.1", sip.port))
                if j % 50 == 0:
                    await asyncio.sleep(0.005)
            await asyncio.sleep(0.2)
        refused = [r for r in caplog.records if "outside allowed_peers" in r.getMessage()]
        assert 1 <= len(refused) <= 20
    finally:
        for s in socks:
            s.close()
        await sip.stop()


async def test_bad_locations_share_one_log_key() -> None:
    sip = await started()
    transport, client = await udp_client()
    try:
        for i in range(5):
            body = pidf(point(50, 3, srs=f"urn:x:{i}"))
            transport.sendto(
                invite(f"srs{i}@pbx", body=body, content_type="application/pidf+xml"),
                ("127.0.0.1", sip.port),
            )
        await replies(client, 10)
        assert list(sip.once.counts) == ["bad location information"]
    finally:
        transport.close()
        await sip.stop()


# -- S4: TCP peers ------------------------------------------------------------------


async def test_tcp_peer_that_never_reads_is_bounded() -> None:
    sip = await started(transports=["tcp"])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", sip.port))
    s.setblocking(False)
    loop = asyncio.get_running_loop()
    burst = b"".join(
        invite(f"o{i}@x", branch=f"z9hG4bK-o{i}", method="OPTIONS").replace(b"UDP", b"TCP")
        for i in range(2000)
    )
    try:
        for _ in range(10):
            try:
                await asyncio.wait_for(loop.sock_sendall(s, burst), 0.5)
            except (TimeoutError, OSError):
                break
        await asyncio.sleep(0.2)
        assert sip._transports is not None
        for connection in sip._transports.connections:
            assert connection._transport is not None
            assert connection._transport.get_write_buffer_size() <= 512 * 1024
    finally:
        s.close()
        await sip.stop()


async def test_tcp_connections_per_source_are_capped() -> None:
    sip = await started(transports=["tcp"])
    conns = []
    try:
        for _ in range(17):
            conns.append(await asyncio.open_connection("127.0.0.1", sip.port))
        await asyncio.sleep(0.1)
        assert sip._transports is not None and len(sip._transports.connections) == 16
        reader, _ = conns[-1]
        assert await asyncio.wait_for(reader.read(10), 1.0) == b""
    finally:
        for _, writer in conns:
            writer.close()
        await sip.stop()


# -- S5: a leg left ringing ----------------------------------------------------------


async def test_observe_leg_left_ringing_gets_480_and_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sip = await started(answer="observe")
    assert sip.agent is not None
    sip.agent.table.linger = 0.3
    transport, client = await udp_client()
    try:
        transport.sendto(invite("lng@pbx"), ("127.0.0.1", sip.port))
        got = await replies(client, 3)
        assert [status(r) for r in got] == [100, 180, 480]
        assert to_header(got[1]) == to_header(got[2])
        await asyncio.sleep(0.05)
        assert desk(sip).states("lng@pbx") == [CallState.RINGING, CallState.ENDED]
        assert any("no CANCEL" in r.getMessage() for r in caplog.records)
    finally:
        transport.close()
        await sip.stop()


# -- nits ---------------------------------------------------------------------------


async def test_cancel_200_carries_the_invites_to_tag() -> None:
    sip = await started(answer="observe")
    transport, client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        transport.sendto(invite("can1@pbx"), addr)
        ringing = (await replies(client, 2))[-1]
        transport.sendto(invite("can1@pbx", method="CANCEL"), addr)
        got = await replies(client, 2)
        assert sorted(status(r) for r in got) == [200, 487]
        assert {to_header(r) for r in got} == {to_header(ringing)}
    finally:
        transport.close()
        await sip.stop()


async def test_require_with_an_unknown_extension_is_420() -> None:
    sip = await started()
    transport, client = await udp_client()
    addr = ("127.0.0.1", sip.port)
    try:
        transport.sendto(invite("req@pbx", extra="Require: 100rel, foo\r\n"), addr)
        got = await replies(client, 2)
        assert [status(r) for r in got] == [100, 420]
        assert header(got[1], "Unsupported") == ["100rel, foo"]
        transport.sendto(invite("req@pbx", method="CANCEL", extra="Require: foo\r\n"), addr)
        # CANCEL ignores Require (§8.2.2.3): 200, the INVITE having had its final answer
        assert status((await replies(client, 1))[0]) == 200
        transport.sendto(invite("req@pbx", method="ACK", extra="Require: foo\r\n"), addr)
        transport.sendto(
            invite("ro@pbx", branch="z9hG4bK-ro", method="OPTIONS", extra="Require: foo\r\n"),
            addr,
        )
        (options,) = await replies(client, 1)
        assert status(options) == 420 and header(options, "Unsupported") == ["foo"]
        await asyncio.sleep(0.05)
        assert desk(sip).states("req@pbx") == [CallState.RINGING]  # still an incident
    finally:
        transport.close()
        await sip.stop()


async def test_refusals_never_copy_header_values_with_cr_lf_or_nul() -> None:
    sip = await started()
    transport, client = await udp_client()
    try:
        raw = invite("inj@pbx").replace(b";rport\r\n", b";rport\nX-Injected: yes\r\n")
        raw = raw[: raw.find(b"\r\n\r\n")] + b"\r\nX-Cut: a"  # a head that never ends
        transport.sendto(raw, ("127.0.0.1", sip.port))
        assert await silent(client, 0.3)  # its Via cannot be copied, so it is not routable
    finally:
        transport.close()
        await sip.stop()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_partial_headers_never_hold_cr_lf_or_nul(junk: bytes) -> None:
    head = invite()[: invite().find(b"\r\n\r\n")] + b"\r\nX: " + junk + b"\r\nY: z\r\nCut"
    for values in partial_headers(head).values():
        assert values and all(not set(v) & {"\r", "\n", "\x00"} for v in values)
    try:
        parse_request(head)
    except SipError as error:
        for values in error.headers.values():
            assert all(not set(v) & {"\r", "\n", "\x00"} for v in values)


def test_cid_is_compared_after_percent_decoding() -> None:
    body = (
        b"--b1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <loc/1@pbx>\r\n\r\n"
        + pidf(circle(50.63, 3.06, 20))
        + b"\r\n--b1--\r\n"
    )
    request = parse_request(
        invite(
            extra="Geolocation: <cid:loc%2F1@pbx>\r\n",
            body=body,
            content_type="multipart/mixed; boundary=b1",
        )
    )
    assert location_of(request) == Location(lat=50.63, lon=3.06, radius_m=20.0)
