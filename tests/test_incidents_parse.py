"""Properties of the incidents' input parsers (csuhub/incidents/parse.py): any
JSON value either parses into checked values or is an IncidentError naming a
field, never another exception."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.incidents import parse
from csuhub.incidents.model import IncidentError
from csuhub.refs import Location, Priority

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["category", "priority", "location", "district", "text", "caller", "camera", "time"]
BODIES = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from([*FIELDS, "note", "outcome", "lat"]), JSON, max_size=5),
)
PRINTABLE = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() and t.strip().isprintable())


def refused_or(func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except IncidentError as err:
        assert err.field is not None, err
        assert str(err)
        return None


@settings(max_examples=300)
@given(BODIES)
def test_open_parses_or_names_the_field(body: Any) -> None:
    found = refused_or(parse.parse_open, body)
    if found is not None:
        assert 1 <= len(found.category) <= 64
        assert isinstance(found.priority, Priority)
        assert found.location is None or isinstance(found.location, Location)


@settings(max_examples=200)
@given(BODIES)
def test_the_other_bodies_parse_or_name_the_field(body: Any) -> None:
    for func in (parse.parse_note, parse.parse_link, parse.parse_close):
        refused_or(func, body)
    found = refused_or(parse.parse_bookmark, body, "Europe/Paris")
    if found is not None:
        camera, moment, note = found
        assert parse.camera(camera) == camera
        assert math.isfinite(moment) and moment >= 0 and isinstance(note, str)


@given(
    st.floats(-90, 90),
    st.floats(-180, 180),
    st.none() | st.floats(0, 1e6),
    st.none() | PRINTABLE,
    st.sampled_from(list(parse.PRIORITIES)),
    PRINTABLE,
)
def test_a_valid_open_body_round_trips(
    lat: float, lon: float, radius: float | None, address: str | None, prio: str, cat: str
) -> None:
    body = {
        "category": cat,
        "priority": prio,
        "location": {"lat": lat, "lon": lon, "radius_m": radius, "address": address},
    }
    found = parse.parse_open(body)
    assert found.category == cat.strip() and str(found.priority) == prio
    assert found.location == Location(lat, lon, radius, address.strip() if address else None)


@given(st.one_of(st.floats(), st.integers(-(10**20), 10**20)), st.sampled_from(["lat", "lon"]))
def test_coordinates_out_of_range_are_refused_by_name(value: float, field: str) -> None:
    location = {"lat": 0.0, "lon": 0.0, field: value}
    bound = 90 if field == "lat" else 180
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > bound:
        with pytest.raises(IncidentError) as err:
            parse.location(location)
        assert err.value.field == field
    else:
        assert parse.location(location) is not None


@given(
    st.dictionaries(
        st.sampled_from(["status", "from", "to", "camera", "limit", "x"]),
        st.text(max_size=30),
        max_size=4,
    )
)
def test_the_list_query_parses_or_names_the_parameter(query: dict[str, str]) -> None:
    found = refused_or(parse.parse_query, query, "UTC")
    if found is not None:
        assert found.status in (None, "open", "closed")
        assert 1 <= found.limit <= parse.MAX_LIST
        if found.start is not None and found.end is not None:
            assert found.end > found.start


@given(st.text(max_size=50))
def test_texts_are_printable_and_bounded(value: str) -> None:
    found = refused_or(parse.text, value, "note", 20)
    if found is not None:
        assert found == value.strip() and 0 < len(found) <= 20 and found.isprintable()


def test_refusals_name_their_field() -> None:
    cases = [
        ({"category": "x", "priorty": "high"}, "priorty"),
        ({}, "category"),
        ({"category": "x", "location": {"lat": 1.0}}, "location"),
        ({"category": "x", "location": {"radius_m": 5}}, "radius_m"),
        ({"category": "x", "location": {}}, "location"),
        ({"category": "a\x1bb"}, "category"),
        ({"category": "x", "text": "line one\nline two"}, None),
    ]
    for body, field in cases:
        if field is None:
            assert parse.parse_open(body).text == "line one\nline two"
            continue
        with pytest.raises(IncidentError) as err:
            parse.parse_open(body)
        assert err.value.field == field, body
    with pytest.raises(IncidentError):
        parse.parse_query({"from": "2026-11-25T14:00", "to": "2026-11-25T13:00"}, "UTC")
    assert parse.parse_bookmark({"camera": "cam-a", "time": 10}, "UTC") == ("cam-a", 10.0, "")
