"""The ethics figures from a seeded store, over the real API with an auditor's
token; the audit search and CSV export; the strict query parsers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.audit.chain import hash_of
from csuhub.audit.ethics import figures
from csuhub.audit.export import read_csv
from csuhub.store import Store
from csuhub.store.audit import append_event
from csuhub.testing import api_token, make_hub
from csuhub.web.ethics import (
    AUDIT_PARAMS,
    QueryError,
    parse_audit,
    parse_export,
    parse_summary,
)

DAY = 86400.0
NOW = 1_764_000_000.0  # 2025-11-24
T0 = NOW - 10 * DAY


def _view(conn: sqlite3.Connection, i: int, role: str, camera: str, seconds: float) -> None:
    append_event(
        conn,
        f"u{i}",
        "recording.view",
        camera,
        role=role,
        reason="call",
        params={"start": T0, "end": T0 + seconds},
        ts=T0 + i,
    )


def seed(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for i in range(120):  # the seed: 100+ requisitions, about half helpful
        closed = i < 100
        outcome = ("helped" if i % 2 == 0 else "not_helped") if closed else None
        conn.execute(
            "INSERT INTO requisitions(reference, service, officer, legal_frame, reason, start,"
            " end, cameras, status, outcome, created_at, created_by, updated_at, closed_at)"
            " VALUES(?, 'CP Lille', 'OPJ', 'flagrant_delit', 'r', 0, 1, '[]', ?, ?, ?, 'x', ?, ?)",
            (
                f"PV-{i}",
                "closed" if closed else "held",
                outcome,
                T0 + i,
                T0 + i,
                T0 + i + 1 if closed else None,
            ),
        )
    conn.execute(  # outside the period
        "INSERT INTO requisitions(reference, service, officer, legal_frame, reason, start, end,"
        " cameras, status, created_at, created_by, updated_at)"
        " VALUES('OLD', 's', 'o', 'flagrant_delit', 'r', 0, 1, '[]', 'held', 5, 'x', 5)"
    )
    _view(conn, 1, "operator", "cam-a", 3600)
    _view(conn, 2, "operator", "cam-b", 1800)
    _view(conn, 3, "supervisor", "cam-a", 7200)
    started = append_event(
        conn,
        "u4",
        "recording.export",
        "cam-a",
        role="supervisor",
        reason="PV-1",
        outcome="started",
        ts=T0 + 4,
    )
    append_event(conn, "u4", "recording.export", "cam-a", outcome="ok", ref=started, ts=T0 + 5)
    append_event(conn, "u5", "recording.export", "cam-b", reason="PV-1", ts=T0 + 6)
    append_event(
        conn, "u6", "recording.export", "cam-b", reason="curiosity", outcome="refused", ts=T0 + 8
    )
    append_event(conn, "u7", "requisition.export", "requisition:3", ts=T0 + 7)
    for i, status in enumerate(["approved", "approved", "refused", "expired"]):
        conn.execute(
            "INSERT INTO mask_lifts(camera_id, reason, requisition_id, status, requested_by,"
            " requested_at, duration_s) VALUES(?, 'r', ?, ?, 'u', ?, 900)",
            ("cam-a" if i < 3 else "cam-b", 1 if i == 0 else None, status, T0 + i),
        )
    for cid, district in [("cam-a", "Centre"), ("cam-b", "Centre"), ("cam-c", "Fives")]:
        conn.execute(
            "INSERT INTO cameras(id, name, driver, state, created_at, updated_at, location)"
            " VALUES(?, ?, 'simcam', 'online', 0, 0, ?)",
            (cid, cid, json.dumps({"lat": 50.6, "lon": 3.0, "district": district})),
        )
    for i, (start, hold) in enumerate([(NOW - 40 * DAY, 2), (NOW - 31 * DAY, 0), (NOW - DAY, 0)]):
        conn.execute(
            "INSERT INTO segments(camera_id, start, end, duration, size, path, hold, indexed_at)"
            " VALUES('cam-a', ?, ?, 60, 1, ?, ?, 0)",
            (start, start + 60, f"s{i}.mp4", hold),
        )
    conn.execute("COMMIT")


async def test_figures_from_a_seeded_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        await store.call(seed)
        got = await store.call(figures, T0, T0 + DAY, 30 * DAY, NOW)
    finally:
        await store.close()
    assert got["requisitions"] == {
        "received": 120,
        "by_status": {"closed": 100, "held": 20},
        "by_outcome": {"helped": 50, "not_helped": 50},
    }
    assert got["exports"] == {
        "total": 3,
        "by_reason": {"PV-1": 2, "(none)": 1},
        "not_done": {"refused": 1},
    }
    assert got["playback"] == {
        "views": 3,
        "hours": 3.5,
        "hours_by_camera": {"cam-a": 3.0, "cam-b": 0.5},
        "hours_by_role": {"operator": 1.5, "supervisor": 2.0},
    }
    assert got["mask_lifts"] == {
        "requested": 4,
        "by_status": {"approved": 2, "expired": 1, "refused": 1},
        "by_camera": {"cam-a": 3, "cam-b": 1},
        "for_requisitions": 1,
    }
    assert got["cameras_per_district"] == {"Centre": 2, "Fives": 1}
    retention = got["retention"]
    assert retention["legal_cap_days"] == 30
    assert retention["oldest_footage_age_days"] == 40
    assert retention["oldest_unheld_footage_age_days"] == 31
    assert retention["segments_past_cap"] == 1
    assert retention["segments_past_cap_under_legal_hold"] == 1
    assert retention["compliant"] is False


async def test_the_routes_for_an_auditor_and_no_one_without_audit_read(tmp_path: Path) -> None:
    async with make_hub(tmp_path / "data", web=True) as hub:
        await hub.store.call(seed)
        auditor = await api_token(hub, "auditor")
        operator = await api_token(hub, "operator")
        assert hub.web is not None
        base = hub.web.url.rstrip("/")
        async with aiohttp.ClientSession() as http:

            async def get(path: str, token: str = auditor) -> aiohttp.ClientResponse:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.get(base + path, headers=headers) as response:
                    await response.read()
                    return response

            period = f"from={T0:.0f}&to={T0 + DAY:.0f}"
            async with http.get(
                f"{base}/api/ethics/summary?{period}",
                headers={"Authorization": f"Bearer {auditor}"},
            ) as response:
                assert response.status == 200
                data = await response.json()
            assert data["requisitions"]["received"] == 120
            assert data["playback"]["hours_by_role"] == {"operator": 1.5, "supervisor": 2.0}
            assert all(isinstance(v, int | float | None) for v in _leaves(data))  # numbers only
            for path in (
                "/api/ethics/summary",
                "/api/audit",
                f"/api/audit/export?{period}",
            ):
                refused = await get(path, operator)
                assert refused.status in (403, 404), path
            bad = await get("/api/ethics/summary?from=yesterday")
            assert bad.status == 400
            bad = await get("/api/audit?limit=0")
            assert bad.status == 400
            bad = await get("/api/audit?acton=recording.view")
            assert bad.status == 400
            async with http.get(
                f"{base}/api/audit?action=recording.view&limit=2",
                headers={"Authorization": f"Bearer {auditor}"},
            ) as response:
                assert response.status == 200
                found = (await response.json())["entries"]
            assert [e["actor"] for e in found] == ["u3", "u2"]
            assert all(hash_of(e) == e["hash"] for e in found)
            async with http.get(
                f"{base}/api/audit/export?{period}",
                headers={"Authorization": f"Bearer {auditor}"},
            ) as response:
                assert response.status == 200
                assert response.content_type == "text/csv"
                exported = read_csv(await response.text())
            assert [e["actor"] for e in exported][:3] == ["u1", "u2", "u3"]
            assert all(hash_of(e) == e["hash"] for e in exported)


def _leaves(data: object) -> list[object]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    return [data]


_value = st.text(max_size=30) | st.sampled_from(
    ["1764000000", "2026-11-25T14:00", "0", "100", "10000", "10001", "csv", "x" * 201, ""]
)
_pairs = st.lists(
    st.tuples(st.sampled_from([*AUDIT_PARAMS, "format", "From", "x"]), _value), max_size=5
)


@settings(max_examples=300, deadline=None)
@given(pairs=_pairs)
def test_the_query_parsers_accept_or_refuse_with_a_message(pairs: list[tuple[str, str]]) -> None:
    for parse in (
        lambda p: parse_audit(p, "Europe/Paris"),
        lambda p: parse_summary(p, "Europe/Paris", NOW),
        lambda p: parse_export(p, "Europe/Paris"),
    ):
        try:
            result = parse(pairs)
        except QueryError as err:
            assert str(err)
            continue
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys))
        if isinstance(result, tuple):
            assert result[0] < result[1]
        else:
            assert 1 <= result.limit <= 10_000
            if result.start is not None and result.end is not None:
                assert result.start < result.end


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("limit", "10001")], "limit: a whole number from 1 to 10000"),
        ([("limit", "٣")], "limit"),
        ([("from", "10"), ("to", "5")], "to: must be after from"),
        ([("actor", "a\nb")], "actor: 1 to 200 printable characters"),
        ([("action", "x"), ("action", "y")], "action: given more than once"),
        ([("format", "csv")], "unknown parameter 'format'"),
    ],
)
def test_the_audit_query_messages(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_audit(pairs, "UTC")


def test_an_export_needs_both_ends() -> None:
    with pytest.raises(QueryError, match="to: required"):
        parse_export([("from", "10")], "UTC")
    assert parse_export([("from", "10"), ("to", "20")], "UTC") == (10.0, 20.0)


def test_the_summary_defaults_to_the_last_30_days() -> None:
    assert parse_summary([], "UTC", NOW) == (NOW - 30 * DAY, NOW)
