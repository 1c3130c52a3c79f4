"""Privacy masks: the parser of drawn masks, the rasteriser, the store, the
lift workflow (dual control, expiry). Real SQLite; no ffmpeg here
(``test_masks_ffmpeg.py`` has the pictures)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.masks import lifts
from csuhub.masks.apply import jpeg_size
from csuhub.masks.model import MAX_MASKS, MAX_POINTS, MaskError, parse_masks, polygon_area
from csuhub.masks.raster import coverage, mask_pgm
from csuhub.security.permissions import ROLES, Principal, permissions_of
from csuhub.store import Store
from csuhub.web.validation import MAX_REASON

# -- the parser ------------------------------------------------------------------

JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
COORD = st.floats(0.0, 1.0, allow_nan=False)
POINT = st.tuples(COORD, COORD)
POLYGON = st.lists(POINT, min_size=3, max_size=MAX_POINTS).filter(
    lambda p: polygon_area(tuple(p)) >= 1e-6
)


@given(st.one_of(JSONISH, st.fixed_dictionaries({"masks": st.lists(JSONISH, max_size=4)})))
def test_parse_masks_refuses_anything_else_with_a_mask_error(body: Any) -> None:
    try:
        parsed = parse_masks(body)
    except MaskError as err:
        assert err.field.startswith("masks")
        return
    for name, polygon in parsed:  # what gets through is well formed
        assert name and len(polygon) >= 3
        assert all(0 <= c <= 1 and math.isfinite(c) for p in polygon for c in p)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"polygon": POLYGON.map(lambda p: [list(x) for x in p])},
            optional={"name": st.text(min_size=1, max_size=20).filter(str.isprintable)},
        ),
        max_size=MAX_MASKS,
        unique_by=lambda m: m.get("name", "").strip() or object(),
    )
)
def test_parse_masks_keeps_valid_masks_exactly(masks: list[dict[str, Any]]) -> None:
    named = [m.get("name", "").strip() for m in masks]
    if any(n == "" and "name" in m for n, m in zip(named, masks, strict=True)):
        return  # a blank name is refused, tested below
    try:
        parsed = parse_masks({"masks": masks})
    except MaskError as err:  # only a generated default clashing with a given name
        assert "two masks are named" in str(err)
        return
    assert [list(map(list, p)) for _, p in parsed] == [m["polygon"] for m in masks]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"masks": [{"polygon": [[0, 0], [1, 0]]}]}, "masks.0.polygon"),
        ({"masks": [{"polygon": [[0, 0], [1, 0], [1, 1.5]]}]}, "masks.0.polygon.2"),
        ({"masks": [{"polygon": [[0, 0], [1, 0], [True, 1]]}]}, "masks.0.polygon.2"),
        ({"masks": [{"polygon": [[0, 0], [0.5, 0.5], [1, 1]]}]}, "masks.0.polygon"),
        ({"masks": [{"name": " ", "polygon": [[0, 0], [1, 0], [1, 1]]}]}, "masks.0.name"),
        ({"masks": [{"polygon": [[0, 0], [1, 0], [1, 1]], "colour": "red"}]}, "masks.0"),
        ({"masks": [{"polygon": [[0, 0], [1, 0], [1, 1]]}] * (MAX_MASKS + 1)}, "masks"),
        ({"masks": [{"polygon": [[0, 0], [1, 0], [1, 1]] * 30}]}, "masks.0.polygon"),
        ({"masks": [], "extra": 1}, "masks"),
    ],
)
def test_parse_masks_names_the_bad_field(body: Any, field: str) -> None:
    with pytest.raises(MaskError) as caught:
        parse_masks(body)
    assert caught.value.field == field


# -- the rasteriser --------------------------------------------------------------


def _inside(polygon: list[tuple[float, float]], x: float, y: float) -> bool:
    """Even-odd point in polygon (the reference the rasteriser must cover)."""
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def test_a_rectangle_is_masked_exactly_on_its_2x2_blocks() -> None:
    rect = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))
    cells = coverage((rect,), 320, 240)
    rows = [y for y in range(240) if any(cells[y * 320 : (y + 1) * 320])]
    cols = [x for x in range(320) if cells[100 * 320 + x]]
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (60, 179, 80, 239)
    assert set(cells[100 * 320 + 80 : 100 * 320 + 240]) == {255}
    data = mask_pgm((rect,), 320, 240)
    assert data.startswith(b"P5\n320 240\n255\n") and len(data) == 15 + 320 * 240


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(POINT, min_size=3, max_size=8),
    st.integers(2, 64).map(lambda n: n * 2),
    st.integers(2, 48).map(lambda n: n * 2),
)
def test_every_pixel_whose_centre_is_inside_is_masked(
    points: list[tuple[float, float]], width: int, height: int
) -> None:
    cells = coverage((tuple(points),), width, height)
    scaled = [(x * width, y * height) for x, y in points]
    for y in range(height):
        for x in range(width):
            if _inside(scaled, x + 0.5, y + 0.5):
                assert cells[y * width + x] == 255, (x, y)
    # and whole 2x2 blocks only (4:2:0 chroma never straddles the edge)
    for y in range(0, height, 2):
        for x in range(0, width, 2):
            block = {cells[(y + dy) * width + x + dx] for dy in (0, 1) for dx in (0, 1)}
            assert len(block) == 1


def test_rasterising_1080p_is_fast_and_cached() -> None:
    import time

    poly = ((0.1, 0.1), (0.4, 0.05), (0.45, 0.5), (0.2, 0.6), (0.05, 0.3))
    mask_pgm.cache_clear()
    began = time.perf_counter()
    first = mask_pgm((poly, poly[::-1]), 1920, 1080)
    took = time.perf_counter() - began
    assert took < 1.0  # about 30 ms alone; the machine is shared
    began = time.perf_counter()
    assert mask_pgm((poly, poly[::-1]), 1920, 1080) is first
    assert time.perf_counter() - began < 0.01


# -- JPEG header parser (snapshots come from cameras: outside input) -------------


@given(st.binary(max_size=64))
def test_jpeg_size_refuses_garbage_with_value_error(data: bytes) -> None:
    try:
        width, height = jpeg_size(b"\xff\xd8" + data)
    except ValueError:
        return
    assert width > 0 and height > 0


def test_jpeg_size_reads_a_frame_header() -> None:
    sof = b"\xff\xc0\x00\x11\x08" + (240).to_bytes(2, "big") + (320).to_bytes(2, "big")
    app0 = b"\xff\xe0\x00\x04ab"
    assert jpeg_size(b"\xff\xd8" + app0 + sof + b"\x03" + b"\x00" * 9) == (320, 240)
    with pytest.raises(ValueError):
        jpeg_size(b"GIF89a")


# -- the store and the lift workflow ---------------------------------------------


def person(name: str, role: str) -> Principal:
    return Principal(name, "user", (role,), permissions_of([role]))


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    db = Store(tmp_path / "csuhub.db")
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def test_drawn_masks_are_replaced_never_forgotten(store: Store) -> None:
    square = ((0.1, 0.1), (0.2, 0.1), (0.2, 0.2))
    removed, now = await store.masks.replace("cam-a", [("porch", square)], "alice", 100.0)
    assert removed == [] and [m["name"] for m in now] == ["porch"]
    removed, now = await store.masks.replace("cam-a", [("window", square)], "bob", 200.0)
    assert [m["name"] for m in removed] == ["porch"] and [m["name"] for m in now] == ["window"]
    rows = await store.call(
        lambda c: [dict(r) for r in c.execute("SELECT * FROM privacy_masks ORDER BY id")]
    )
    assert rows[0]["removed_by"] == "bob" and rows[0]["removed_at"] == 200.0
    assert json.loads(rows[1]["polygon"]) == [list(p) for p in square]


async def audit_actions(store: Store) -> list[tuple[str, str, str]]:
    rows = await store.call(
        lambda c: [
            (r["actor"], r["action"], r["outcome"])
            for r in c.execute("SELECT * FROM audit_log WHERE action LIKE 'mask.%' ORDER BY id")
        ]
    )
    return list(rows)


async def test_dual_control_refuses_self_approval_and_expires(store: Store) -> None:
    assert "mask.lift.approve" in ROLES["supervisor"]
    alice, bob = person("alice", "supervisor"), person("bob", "supervisor")
    lift = await lifts.request_lift(store, alice, "cam-a", {"reason": "fire at no 12"}, now=1000)
    assert lift["status"] == "requested" and lift["duration_s"] == lifts.DEFAULT_DURATION
    assert await lifts.in_force(store, "cam-a", now=1001) is None
    with pytest.raises(lifts.LiftError) as own:
        await lifts.decide(store, alice, lift["id"], True, now=1002)
    assert own.value.kind == "forbidden"
    approved = await lifts.decide(store, bob, lift["id"], True, now=1010)
    assert approved["status"] == "approved" and approved["expires_at"] == 1010 + 900
    with pytest.raises(lifts.LiftError) as twice:
        await lifts.decide(store, bob, lift["id"], True, now=1011)
    assert twice.value.kind == "conflict"
    assert (await lifts.in_force(store, "cam-a", now=1500))["id"] == lift["id"]
    assert await lifts.in_force(store, "cam-b", now=1500) is None
    # a lift for no requisition unmasks no requisition's export
    assert await lifts.in_force(store, "cam-a", 7, now=1500) is None
    assert await lifts.in_force(store, "cam-a", now=1910) is None  # over, by itself
    assert (await store.masks.lift(lift["id"]))["status"] == "expired"
    assert await lifts.expire(store, now=5000) == []  # expired once, audited once
    assert await audit_actions(store) == [
        ("alice", "mask.lift.request", "ok"),
        ("alice", "mask.lift.approve", "refused"),
        ("bob", "mask.lift.approve", "ok"),
        ("bob", "mask.lift.approve", "refused"),
        ("hub", "mask.lift.expire", "ok"),
    ]
    # every entry, those written inside the lift's own transactions included, chains
    assert (await store.audit_trail.verify({})).ok


async def test_refuse_end_and_lapse(store: Store) -> None:
    alice, bob = person("alice", "operator"), person("bob", "supervisor")
    carol = person("carol", "operator")
    first = await lifts.request_lift(store, alice, "cam-a", {"reason": "r", "duration": 60}, now=0)
    refused = await lifts.decide(store, bob, first["id"], False, reason="no", now=5)
    assert refused["status"] == "refused" and refused["expires_at"] is None
    second = await lifts.request_lift(store, alice, "cam-a", {"reason": "r"}, now=10)
    await lifts.decide(store, bob, second["id"], True, now=20)
    with pytest.raises(lifts.LiftError) as stranger:
        await lifts.end_lift(store, carol, second["id"], now=30)
    assert stranger.value.kind == "forbidden"
    ended = await lifts.end_lift(store, alice, second["id"], now=40)
    assert ended["status"] == "ended" and ended["ended_at"] == 40
    assert await lifts.in_force(store, "cam-a", now=41) is None
    lapsing = await lifts.request_lift(store, alice, "cam-a", {"reason": "r"}, now=100)
    await lifts.expire(store, now=100 + lifts.REQUEST_TTL)
    assert (await store.masks.lift(lapsing["id"]))["status"] == "expired"
    with pytest.raises(lifts.LiftError) as late:
        await lifts.decide(store, bob, lapsing["id"], True, now=100 + lifts.REQUEST_TTL + 1)
    assert late.value.kind == "conflict"


@given(JSONISH)
def test_parse_request_refuses_anything_else_with_a_lift_error(body: Any) -> None:
    try:
        reason, _requisition, duration = lifts.parse_request(body)
    except lifts.LiftError:
        return
    assert reason.strip() and lifts.MIN_DURATION <= duration <= lifts.MAX_DURATION


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": "  "},
        {"reason": "x", "duration": 59},
        {"reason": "x", "duration": 7201},
        {"reason": "x", "duration": True},
        {"reason": "x", "requisition_id": 0},
        {"reason": "x", "requisition_id": "3"},
        {"reason": "x\u202e"},
        {"reason": "x", "camera": "cam-b"},
    ],
)
def test_parse_request_refusals(body: dict[str, Any]) -> None:
    with pytest.raises(lifts.LiftError):
        lifts.parse_request(body)


# -- who may decide (a person), and the decision's body --------------------------


async def test_only_a_person_decides_a_lift_never_a_service_account(store: Store) -> None:
    """A machine token holding the supervisor role (a CAD link) is not the
    second pair of eyes: its approval is refused and audited; a person's,
    whether signed in or through a token of their own account, is taken."""
    alice = person("alice", "operator")
    cad = Principal("cad-link", "service", ("supervisor",), permissions_of(["supervisor"]))
    asked = await lifts.request_lift(store, alice, "cam-a", {"reason": "r"}, now=0)
    for approve in (True, False):
        with pytest.raises(lifts.LiftError) as machine:
            await lifts.decide(store, cad, asked["id"], approve, now=1)
        assert machine.value.kind == "forbidden"
    assert (await store.masks.lift(asked["id"]))["status"] == "requested"
    by_token = Principal(
        "bob", "user", ("supervisor",), permissions_of(["supervisor"]), via="token:bob-phone"
    )
    approved = await lifts.decide(store, by_token, asked["id"], True, now=2)
    assert approved["status"] == "approved" and approved["decided_by"] == "bob"
    rows = await store.call(
        lambda c: [
            (r["actor"], r["action"], r["outcome"], json.loads(r["details"]).get("why"))
            for r in c.execute(
                "SELECT * FROM audit_log WHERE action LIKE 'mask.lift.%' ORDER BY id"
            )
        ]
    )
    assert rows[1:3] == [
        (
            "cad-link",
            "mask.lift.approve",
            "refused",
            "a service account cannot decide a lift: a person does",
        ),
        (
            "cad-link",
            "mask.lift.refuse",
            "refused",
            "a service account cannot decide a lift: a person does",
        ),
    ]
    assert rows[3][:3] == ("bob", "mask.lift.approve", "ok")


@given(JSONISH | st.dictionaries(st.sampled_from(["reason", "note"]), JSONISH, max_size=2))
def test_parse_decision_takes_an_optional_printable_reason_or_refuses(body: Any) -> None:
    try:
        reason = lifts.parse_decision(body)
    except lifts.LiftError as err:
        assert err.field in ("body", "reason")
        return
    assert isinstance(body, dict) and set(body) <= {"reason"}
    if reason is None:
        assert not (body.get("reason") or "").strip()
    else:
        assert reason == body["reason"].strip() and reason.isprintable()
        assert 0 < len(reason) <= MAX_REASON


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, None),
        ({"reason": "  "}, None),
        ({"reason": None}, None),
        ({"reason": " seen the PV "}, "seen the PV"),
    ],
)
def test_parse_decision_accepts(body: dict[str, Any], expected: str | None) -> None:
    assert lifts.parse_decision(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"reason": 3},
        {"reason": "x", "approve": True},
        {"reason": "x" * (MAX_REASON + 1)},
        {"reason": "x\u202e"},
        {"reason": "x\udcff"},
    ],
)
def test_parse_decision_refusals(body: Any) -> None:
    with pytest.raises(lifts.LiftError):
        lifts.parse_decision(body)
