"""Audit searches (``GET /api/audit``) over a large trail: the same entries as
a plain filter of the trail, newest first, read through indexes (migration 9)
instead of a scan or a sort of every match."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.store.audit import _SELECT, append_event, entries
from csuhub.store.db import DATABASE
from csuhub.store.sqlite import Store

ACTORS = ["ana", "bob", "cli"]
ACTIONS = ["camera.ptz", "recording.view", "user.add"]
TARGETS = ["cam-1", "cam-2", None]


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    """300 chained entries, one every 10 s, actors, actions and targets interleaved."""
    import asyncio

    path: Path = tmp_path_factory.mktemp("audit") / DATABASE

    async def schema() -> None:
        store = Store(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for i in range(300):
        append_event(
            conn,
            ACTORS[i % 3],
            ACTIONS[(i // 3) % 3],
            TARGETS[(i // 7) % 3],
            params={"i": i},
            ts=1000.0 + 10 * i,
        )
    return conn


def _reference(conn: sqlite3.Connection, **query: Any) -> list[int]:
    rows = [dict(r) for r in conn.execute("SELECT id, ts, actor, action, target FROM audit_log")]
    start, end = query.get("start"), query.get("end")
    picked = [
        r["id"]
        for r in rows
        if (start is None or r["ts"] >= start)
        and (end is None or r["ts"] < end)
        and all(query.get(k) is None or r[k] == query[k] for k in ("actor", "action", "target"))
        and (query.get("after") is None or r["id"] > query["after"])
    ]
    picked.sort(reverse=query.get("newest_first", False))
    limit = query.get("limit")
    return picked if limit is None else picked[:limit]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.none() | st.floats(900, 4100),
    span=st.none() | st.floats(0, 3000),
    actor=st.none() | st.sampled_from([*ACTORS, "nobody"]),
    action=st.none() | st.sampled_from(ACTIONS),
    target=st.none() | st.sampled_from(["cam-1", "cam-2", "cam-9"]),
    limit=st.none() | st.integers(1, 50),
    after=st.none() | st.integers(0, 300),
    newest_first=st.booleans(),
)
def test_searches_answer_what_a_plain_filter_of_the_trail_does(
    trail: sqlite3.Connection,
    start: float | None,
    span: float | None,
    actor: str | None,
    action: str | None,
    target: str | None,
    limit: int | None,
    after: int | None,
    newest_first: bool,
) -> None:
    query: dict[str, Any] = {
        "start": start,
        "end": None if start is None or span is None else start + span,
        "actor": actor,
        "action": action,
        "target": target,
        "limit": limit,
        "after": after,
        "newest_first": newest_first,
    }
    found = entries(trail, **query)
    assert [e["id"] for e in found] == _reference(trail, **query)
    if found:  # every column, as stored
        (row,) = trail.execute(_SELECT + " WHERE id=?", (found[0]["id"],)).fetchall()
        assert tuple(found[0].values()) == tuple(row)


@pytest.mark.parametrize(
    ("column", "index"),
    [
        ("actor", "audit_log_actor"),
        ("action", "audit_log_action_id"),
        ("target", "audit_log_target_id"),
    ],
)
def test_a_search_by_one_column_reads_its_index_not_the_trail(
    trail: sqlite3.Connection, column: str, index: str
) -> None:
    sql = (
        "SELECT id FROM audit_log WHERE " + column + "=? ORDER BY id DESC LIMIT 100"
    )  # the inner query of ``entries``
    plan = " | ".join(r[3] for r in trail.execute("EXPLAIN QUERY PLAN " + sql, ("x",)))
    assert "INDEX" in plan and "SCAN audit_log" not in plan, plan
    if column != "actor":  # the index keeps the ids in order: nothing to sort
        assert index in plan and "TEMP B-TREE" not in plan, plan
