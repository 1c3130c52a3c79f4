"""The webhook call line on its own: options, the signature, the replay window
and the strict body parser, on a fixed clock (tests/test_webhook_http.py
posts to a real hub).

Property tests: a signed request changed in any way (one byte of the body,
the timestamp, the signature) is never accepted, and the parser raises
nothing but ``CallRefused`` whatever the bytes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import voluptuous as vol
from csuhub_webhook import SCHEMA, WebhookLine, register_call_lines
from csuhub_webhook.body import KEYS, LOCATION_KEYS, parse_call
from csuhub_webhook.signing import ReplayCache, parse_signature, parse_timestamp, signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.api import CallRefused, CallState, Location, Priority
from csuhub.testing import validate_plugin

SECRET = "s3cr3t-for-the-cad-of-lille"
NOW = 1_764_079_200.0  # 2025-11-25T14:00:00Z


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _line(clock: Clock | None = None, **options: Any) -> WebhookLine:
    line = WebhookLine(None, "cad", SCHEMA({"secret": SECRET, **options}), clock=clock or Clock())
    await line.start()
    return line


def _signed(
    body: bytes | dict[str, Any],
    ts: float = NOW,
    *,
    secret: str = SECRET,
    content_type: str = "application/json",
) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(ts))
    headers = {
        "X-Csuhub-Timestamp": stamp,
        "X-Csuhub-Signature": "sha256=" + signature(secret, stamp, raw),
        "Content-Type": content_type,
    }
    return headers, raw


async def _refused(line: WebhookLine, headers: dict[str, str], body: bytes) -> CallRefused:
    with pytest.raises(CallRefused) as caught:
        await line.receive(headers, body, "127.0.0.1")
    return caught.value


# -- options -------------------------------------------------------------------------


def test_the_plugin_registers_a_valid_webhook_spec() -> None:
    assert validate_plugin(__import__("csuhub_webhook")) == []
    [spec] = register_call_lines(None)
    assert spec.name == "webhook" and spec.kind == "call_line"
    options = spec.config_schema({"secret": SECRET})
    assert options == {
        "secret": SECRET,
        "signature_header": "X-Csuhub-Signature",
        "timestamp_header": "X-Csuhub-Timestamp",
        "max_skew": 300.0,
        "max_body": 65536,
    }


def test_the_blueprints_options_are_accepted() -> None:
    """blueprints/call_line/webhook.yaml still writes ``path`` and a ``max_skew``."""
    options = SCHEMA(
        {"path": "/hooks/calls", "secret": SECRET, "signature_header": "X-Sig", "max_skew": "2m"}
    )
    assert options["path"] == "/hooks/calls" and options["max_skew"] == 120.0
    assert SCHEMA({"secret": SECRET, "max_body": "16KiB"})["max_body"] == 16384


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"secret": "short"},
        {"secret": 1234567890123456789},
        {"secret": SECRET + "\n"},
        {"secret": SECRET, "max_skew": "1s"},
        {"secret": SECRET, "max_skew": "2h"},
        {"secret": SECRET, "max_body": "2MiB"},
        {"secret": SECRET, "max_body": True},
        {"secret": SECRET, "signature_header": "X Sig"},
        {"secret": SECRET, "signature_header": "X-Csuhub-Timestamp"},
        {"secret": SECRET, "path": "hooks"},
        {"secret": SECRET, "unknown": 1},
    ],
)
def test_bad_options_are_refused_without_showing_the_secret(options: dict[str, Any]) -> None:
    with pytest.raises(vol.Invalid) as caught:
        SCHEMA(options)
    assert SECRET not in str(caught.value)


async def test_the_secret_never_appears_in_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    line = await _line(path="/hooks/calls")
    headers, body = _signed({"external_id": "1"}, secret="a-wrong-secret-guessed")
    refused = await _refused(line, headers, body)
    assert refused.status == 401
    everything = caplog.text + repr(line) + refused.reason
    assert SECRET not in everything and headers["X-Csuhub-Signature"][7:] not in everything
    assert "/api/call-lines/cad/calls" in caplog.text  # the legacy path is explained


# -- signature, freshness, replay ----------------------------------------------------


def test_the_signature_is_the_documented_construction() -> None:
    """The worked example of docs/webhook.md, computed independently."""
    import hashlib
    import hmac

    body = b'{"external_id":"2026-000123"}'
    expected = hmac.new(b"exemple-de-secret-partage", b"1764079200." + body, hashlib.sha256)
    assert signature("exemple-de-secret-partage", 1764079200, body) == expected.hexdigest()
    assert parse_signature(f" sha256={expected.hexdigest().upper()} ") == expected.hexdigest()
    assert parse_signature(expected.hexdigest()) == expected.hexdigest()
    for bad in ("", "sha256=", "sha1=" + "0" * 64, "0" * 63, "0" * 65, "sha256=" + "g" * 64):
        assert parse_signature(bad) is None
    assert parse_timestamp("1764079200") == 1764079200
    for bad in ("", "-1", "1.5", "1e9", "\u0661\u0662", "0x10", "1" * 13):
        assert parse_timestamp(bad) is None


async def test_a_valid_request_becomes_a_dispatched_report() -> None:
    line = await _line()
    headers, body = _signed(
        {
            "external_id": "2026-000123",
            "caller": "+33 6 12 34 56 78",
            "location": {"lat": 50.6366, "lon": 3.0635, "radius_m": 30, "address": "Grand Place"},
            "category": "rixe",
            "priority": "high",
            "text": "deux individus\r\nse battent",
            "occurred_at": "2025-11-25T14:58:00+01:00",
        }
    )
    report = await line.receive(headers, body, "127.0.0.1")
    assert report.line == "cad" and report.call_id == "2026-000123"
    assert report.state is CallState.DISPATCHED and report.priority is Priority.HIGH
    assert report.caller == "+33 6 12 34 56 78" and report.category == "rixe"
    assert report.location == Location(50.6366, 3.0635, 30.0, "Grand Place")
    assert report.text == "deux individus\nse battent"
    assert report.received_at == NOW - 120
    # defaults: no caller, no location, "call", normal, now
    headers, body = _signed({"external_id": "2026-000124"})
    report = await line.receive(headers, body, None)
    assert (report.caller, report.location, report.category) == (None, None, "call")
    assert report.priority is Priority.NORMAL and report.received_at == NOW


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.pop("X-Csuhub-Signature"),
        lambda h: h.pop("X-Csuhub-Timestamp"),
        lambda h: h.update({"X-Csuhub-Signature": "sha256=" + "0" * 64}),
        lambda h: h.update({"X-Csuhub-Timestamp": str(int(NOW) + 1)}),
        lambda h: h.update({"X-Csuhub-Timestamp": "soon"}),
        lambda h: h.update({"X-Csuhub-Signature": "bearer xyz"}),
    ],
)
async def test_a_bad_or_missing_signature_is_a_401(change: Any) -> None:
    line = await _line()
    headers, body = _signed({"external_id": "1"})
    change(headers)
    refused = await _refused(line, headers, body)
    assert refused.status == 401


async def test_a_repeated_header_counts_as_none() -> None:
    from multidict import CIMultiDict

    line = await _line()
    headers, body = _signed({"external_id": "1"})
    doubled = CIMultiDict(headers)
    doubled.add("X-Csuhub-Signature", headers["X-Csuhub-Signature"])
    assert (await _refused(line, doubled, body)).status == 401  # type: ignore[arg-type]
    assert (await line.receive(CIMultiDict(headers), body, None)).call_id == "1"


async def test_stale_and_future_timestamps_are_409() -> None:
    clock = Clock()
    line = await _line(clock)
    for offset in (-301, 301, -86400):
        headers, body = _signed({"external_id": "1"}, NOW + offset)
        refused = await _refused(line, headers, body)
        assert refused.status == 409 and "stale" in refused.reason
    for offset in (-300, 300):  # the edges are inside
        headers, body = _signed({"external_id": "1"}, NOW + offset)
        assert (await line.receive(headers, body, None)).call_id == "1"


async def test_a_replay_is_409_and_a_resigned_resend_is_an_update() -> None:
    clock = Clock()
    line = await _line(clock, max_skew="1m")
    headers, body = _signed({"external_id": "A"})
    await line.receive(headers, body, None)
    refused = await _refused(line, headers, body)
    assert refused.status == 409 and "replay" in refused.reason
    # the CAD re-sends the same call, signed a second later: a new request
    again, body2 = _signed({"external_id": "A"}, NOW + 1)
    assert (await line.receive(again, body2, None)).call_id == "A"
    # the replay stays refused as long as its timestamp is fresh, then as stale
    clock.now = NOW + 60
    assert (await _refused(line, headers, body)).status == 409
    clock.now = NOW + 61
    assert "stale" in (await _refused(line, headers, body)).reason
    # a refused body (415, 400) is not remembered: corrected, the same bytes pass
    clock.now = NOW
    headers, body = _signed({"external_id": "B"}, content_type="text/plain")
    assert (await _refused(line, headers, body)).status == 415
    headers["Content-Type"] = "application/json; charset=utf-8"
    assert (await line.receive(headers, body, None)).call_id == "B"


async def test_stop_forgets_and_refuses() -> None:
    line = await _line()
    headers, body = _signed({"external_id": "A"})
    await line.receive(headers, body, None)
    await line.stop()
    assert len(line.replays) == 0
    assert (await _refused(line, headers, body)).status == 403


def test_the_replay_cache_is_bounded_and_fails_closed() -> None:
    cache = ReplayCache(capacity=2)
    assert cache.add("a", 0, 10) and cache.add("b", 1, 10)
    assert not cache.add("c", 2, 10)  # full: refuse, never forget "a" early
    assert cache.seen("a", 9.9) and not cache.seen("a", 10)
    assert cache.add("c", 10.5, 10) and len(cache) == 2


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ("text/plain", False),
        ("application/json; charset=latin-1", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
    ],
)
async def test_the_body_must_be_json(content_type: str, ok: bool) -> None:
    line = await _line()
    headers, body = _signed({"external_id": "1"}, content_type=content_type)
    if ok:
        assert (await line.receive(headers, body, None)).call_id == "1"
    else:
        assert (await _refused(line, headers, body)).status == 415


async def test_a_body_over_max_body_is_413() -> None:
    line = await _line(max_body=1024)
    headers, body = _signed({"external_id": "1", "text": "x" * 2000})
    assert (await _refused(line, headers, body)).status == 413


# -- the body ------------------------------------------------------------------------


def _parse(raw: bytes | dict[str, Any]) -> Any:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return parse_call(data, line="cad", now=NOW, max_future=300)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"external_id": "1", "adress": "x"}, "'adress'"),
        ({"external_id": "1", "location": {"lat": 1, "lon": 2, "alt": 3}}, "location.'alt'"),
        (b'{"external_id": "1", "external_id": "2"}', "'external_id' is given twice"),
        (b'{"external_id": "1", "location": {"lat": 1, "lat": 2, "lon": 3}}', "'lat'"),
        (b'{"external_id": "1", "location": {"lat": NaN, "lon": 3}}', "NaN"),
        (b'{"external_id": "1", "occurred_at": Infinity}', "Infinity"),
        (b'{"external_id": "1", "occurred_at": 1e400}', "out of range"),
        (b'{"external_id": "\\ud800"}', "surrogate"),
        (b'{"external_id": "1"', "not valid JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[" * 10_000 + b"]" * 10_000, "nested"),
        (b'["external_id"]', "JSON object"),
        ({}, "external_id is required"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "   "}, "blank"),
        ({"external_id": 12}, "external_id must be a string, not a number"),
        ({"external_id": "x" * 257}, "longer than 256"),
        ({"external_id": "a\u202eb"}, "format character"),
        ({"external_id": "a\nb"}, "control"),
        ({"external_id": "1", "caller": "x" * 65}, "caller"),
        ({"external_id": "1", "caller": 33612345678}, "caller must be a string"),
        ({"external_id": "1", "priority": "urgent"}, "priority"),
        ({"external_id": "1", "priority": 3}, "priority"),
        ({"external_id": "1", "category": ""}, "category"),
        ({"external_id": "1", "text": "x" * 4001}, "text"),
        ({"external_id": "1", "text": "a\x00b"}, "control"),
        ({"external_id": "1", "location": {}}, "lat and lon, or an address"),
        ({"external_id": "1", "location": {"lat": 1}}, "both lat and lon"),
        ({"external_id": "1", "location": {"lat": 91, "lon": 0}}, "lat"),
        ({"external_id": "1", "location": {"lat": 0, "lon": 181}}, "lon"),
        ({"external_id": "1", "location": {"lat": True, "lon": 0}}, "number"),
        ({"external_id": "1", "location": {"lat": "50.6", "lon": "3"}}, "number"),
        ({"external_id": "1", "location": {"address": "x", "radius_m": 5}}, "radius_m"),
        ({"external_id": "1", "location": {"lat": 0, "lon": 0, "radius_m": -1}}, "radius_m"),
        ({"external_id": "1", "location": {"address": " "}}, "blank"),
        ({"external_id": "1", "location": [50.6, 3.0]}, "location must be an object"),
        ({"external_id": "1", "occurred_at": "2025-11-25T14:00:00"}, "UTC offset"),
        ({"external_id": "1", "occurred_at": "yesterday"}, "ISO 8601"),
        ({"external_id": "1", "occurred_at": NOW + 3600}, "future"),
        ({"external_id": "1", "occurred_at": 12}, "before 2000"),
        ({"external_id": "1", "occurred_at": True}, "number"),
    ],
)
def test_bad_bodies_are_refused_with_what_is_wrong(raw: Any, named: str) -> None:
    with pytest.raises(CallRefused) as caught:
        _parse(raw)
    assert caught.value.status == 400
    assert named in caught.value.reason


def test_good_bodies_in_their_variants() -> None:
    assert _parse({"external_id": "1", "caller": None, "location": None}).caller is None
    report = _parse({"external_id": "1", "location": {"address": "Rue Neuve, Lille"}})
    assert report.location == Location(address="Rue Neuve, Lille")
    assert _parse({"external_id": "1", "occurred_at": NOW - 5}).received_at == NOW - 5
    assert _parse({"external_id": "1", "occurred_at": "2025-11-25T13:59Z"}).received_at == NOW - 60
    # a narrow no-break space (French typography) is text, not a control
    assert _parse({"external_id": "1", "text": "appel\u202f: rixe\tsur place"}).text.startswith(
        "appel"
    )


def test_the_openapi_body_schema_is_the_parsers() -> None:
    """The route documents the webhook's body (core cannot import the plugin): the
    keys must agree, and every example the schema admits must parse."""
    from csuhub.web.calllines import CALL_BODY, LOCATION

    assert set(CALL_BODY["properties"]) == set(KEYS)
    assert set(LOCATION["properties"]) == set(LOCATION_KEYS)
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.validator_for(CALL_BODY)
    assert validator.is_valid({"external_id": "1", "location": {"lat": 1, "lon": 2}})
    assert not validator.is_valid({"external_id": "1", "location": {"radius_m": 2}})
    assert not validator.is_valid({"external_id": "1", "extra": 1})


# -- properties ----------------------------------------------------------------------

#: characters a field may hold (docs/webhook.md): no control, format, private,
#: unassigned or line-separator character, no surrogate
_CHAR = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Co", "Cn", "Zl", "Zp"))


def _field(limit: int, *, blank: bool = True) -> st.SearchStrategy[str]:
    found = st.text(_CHAR, min_size=1, max_size=limit)
    return found if blank else found.filter(str.strip)


_ADDRESS = _field(500, blank=False)
_location = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)},
        optional={"radius_m": st.floats(0, 100_000), "address": _ADDRESS},
    ),
    st.fixed_dictionaries({"address": _ADDRESS}),
)
VALID = st.fixed_dictionaries(
    {"external_id": _field(256, blank=False)},
    optional={
        "caller": st.none() | _field(64),
        "location": _location,
        "category": _field(64),
        "priority": st.sampled_from(["low", "normal", "high", "critical"]),
        "text": st.text(_CHAR | st.sampled_from("\t\n"), max_size=200),
        "occurred_at": st.floats(946_684_800, NOW),
    },
)


@given(VALID)
@settings(max_examples=200)
def test_every_body_the_schema_admits_parses(body: dict[str, Any]) -> None:
    report = _parse(body)
    assert report.call_id == body["external_id"]
    assert report.caller == body.get("caller")
    if body.get("location"):
        assert report.location is not None and report.location.lat == body["location"].get("lat")


def _damaged(raw: bytes) -> st.SearchStrategy[bytes]:
    """``raw`` with one byte replaced by 0 to 4 others."""
    return st.tuples(st.integers(0, len(raw) - 1), st.binary(max_size=4)).map(
        lambda cut: raw[: cut[0]] + cut[1] + raw[cut[0] + 1 :]
    )


@given(st.binary(max_size=512) | VALID.map(lambda b: json.dumps(b).encode()).flatmap(_damaged))
@settings(max_examples=400)
def test_the_parser_raises_nothing_but_call_refused(raw: bytes) -> None:
    try:
        _parse(raw)
    except CallRefused as err:
        assert err.status == 400 and err.reason.isprintable()


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*KEYS, *LOCATION_KEYS, "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from([*KEYS, "x"]), _JSONISH, max_size=8))
@settings(max_examples=400)
def test_any_shaped_document_is_refused_or_parsed_never_crashes(doc: dict[str, Any]) -> None:
    try:
        _parse(json.dumps(doc).encode())
    except CallRefused as err:
        assert err.status == 400


@given(
    VALID,
    st.sampled_from(["body", "timestamp", "signature", "secret"]),
    st.data(),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_no_mutation_of_a_signed_request_is_accepted(
    body: dict[str, Any], part: str, data: st.DataObject
) -> None:
    line = await _line()
    headers, raw = _signed(body)
    if part == "body":
        at = data.draw(st.integers(0, len(raw) - 1))
        flip = data.draw(st.integers(1, 255))
        raw = raw[:at] + bytes([raw[at] ^ flip]) + raw[at + 1 :]
    elif part == "timestamp":
        shift = data.draw(st.integers(-300, 300).filter(bool))
        headers["X-Csuhub-Timestamp"] = str(int(NOW) + shift)
    elif part == "signature":
        sig = headers["X-Csuhub-Signature"]
        at = data.draw(st.integers(7, len(sig) - 1))
        other = data.draw(st.sampled_from("0123456789abcdef").filter(lambda c: c != sig[at]))
        headers["X-Csuhub-Signature"] = sig[:at] + other + sig[at + 1 :]
    else:
        headers, raw = _signed(body, secret=SECRET + data.draw(st.text(min_size=1, max_size=3)))
    refused = await _refused(line, headers, raw)
    assert refused.status == 401
