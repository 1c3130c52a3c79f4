"""The audit chain: every entry hashed over its predecessor, and every kind of
tampering made directly in the SQLite file (trigger dropped first) named at the
first broken entry."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.audit.chain import (
    GENESIS,
    HASHED,
    canonical,
    details_text,
    entry_hash,
    hash_of,
    verify_rows,
)
from csuhub.security.permissions import Principal, permissions_of
from csuhub.store import Store
from csuhub.store.audit import append_event
from csuhub.store.db import _split_sql
from csuhub.store.migrations import MIGRATIONS

ALICE = Principal(
    name="alice",
    kind="user",
    roles=("supervisor",),
    permissions=permissions_of(["supervisor"]),
    via="sess-1",
    source="10.0.0.7",
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "csuhub.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def _five(store: Store) -> list[int]:
    ids = [await store.audit("hub", "hub.start", "test-hub", version="1")]
    ids.append(
        await store.audit_event(
            ALICE, "recording.view", "cam-1", reason="PV 12", start=1.0, end=61.0
        )
    )
    ids.append(await store.audit_event(ALICE, "camera.ptz", "cam-1", pan=0.5, tilt=-0.1))
    ids.append(await store.audit("cli", "token.create", "kiosk", role="wall"))
    ids.append(
        await store.audit_event(ALICE, "recording.export", "cam-1", reason="é ☃", outcome="started")
    )
    return ids


def _raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    return conn


async def test_entries_are_chained_and_carry_who_why_and_class(store: Store) -> None:
    ids = await _five(store)
    rows = await store.audit_trail.entries()
    assert [r["id"] for r in rows] == ids
    assert rows[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    for row in rows:
        assert hash_of(row) == row["hash"]
    view = rows[1]
    assert (view["role"], view["via"], view["source"], view["reason"]) == (
        "supervisor",
        "sess-1",
        "10.0.0.7",
        "PV 12",
    )
    assert view["class"] == "consultation"
    assert json.loads(view["details"]) == {"start": 1.0, "end": 61.0}
    assert [r["class"] for r in rows] == [
        "admin",
        "consultation",
        "admin",
        "admin",
        "extraction",
    ]
    assert rows[4]["outcome"] == "started"
    report = await store.audit_trail.verify({})
    assert report.ok and report.entries == 5 and report.head_id == ids[-1]


def test_the_encoding_is_a_compact_utf8_json_array() -> None:
    values = [1, 1.5, "a", None, None, None, "x", None, "{}", "é", "ok", None, "admin", GENESIS]
    assert len(values) == len(HASHED)
    assert (
        canonical(values)
        == (
            '[1,1.5,"a",null,null,null,"x",null,"{}","é","ok",null,"admin","' + GENESIS + '"]'
        ).encode()
    )
    import hashlib

    assert entry_hash(values) == hashlib.sha256(canonical(values)).hexdigest()


async def test_a_bad_outcome_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="outcome"):
        await store.audit_event(ALICE, "camera.ptz", "cam-1", outcome="maybe")


async def test_an_entry_commits_with_its_action_or_not_at_all(store: Store) -> None:
    def action(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES('k', 'v')")
        append_event(conn, "alice", "user.add", "bob", params={"roles": ["operator"]})
        raise RuntimeError("the action failed after its entry")

    with pytest.raises(RuntimeError):
        await store.transaction(action)
    assert await store.audit_trail.entries() == []
    assert await store.get_meta("k") is None


async def _tampered(store: Store, tamper: str) -> tuple[int, str]:
    ids = await _five(store)
    await store.close()
    conn = _raw(store.path)
    if tamper == "edit":
        conn.execute("UPDATE audit_log SET details='{\"start\":1.0}' WHERE id=?", (ids[1],))
        expected = (ids[1], "content")
    elif tamper == "edit-role":
        conn.execute("UPDATE audit_log SET role='admin' WHERE id=?", (ids[2],))
        expected = (ids[2], "content")
    elif tamper == "delete":
        conn.execute("DELETE FROM audit_log WHERE id=?", (ids[2],))
        expected = (ids[3], "link")
    elif tamper == "reorder":  # rows 2 and 3 swap places
        conn.execute("UPDATE audit_log SET id=-1 WHERE id=?", (ids[1],))
        conn.execute("UPDATE audit_log SET id=? WHERE id=?", (ids[1], ids[2]))
        conn.execute("UPDATE audit_log SET id=? WHERE id=-1", (ids[2],))
        expected = (ids[1], "link")
    elif tamper == "insert":  # a well-formed entry slipped in after entry 2
        rows = conn.execute("SELECT id, hash FROM audit_log ORDER BY id").fetchall()
        forged_id = ids[-1] + 1
        values = [forged_id, 1.0, "mallory", None, None, None, "recording.view", "cam-1"]
        values += ["{}", None, "ok", None, "consultation", rows[1][1]]
        conn.execute(
            "INSERT INTO audit_log(id, ts, actor, role, via, source, action, target, details,"
            " reason, outcome, ref, class, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*values, entry_hash(values)),
        )
        expected = (forged_id, "link")
    elif tamper == "unhashed":
        conn.execute(
            "INSERT INTO audit_log(ts, actor, action, target) VALUES(1.0, 'mallory', 'x', NULL)"
        )
        expected = (ids[-1] + 1, "unchained")
    else:  # pragma: no cover
        raise AssertionError(tamper)
    conn.close()
    await store.open()
    return expected


@pytest.mark.parametrize("tamper", ["edit", "edit-role", "delete", "reorder", "insert", "unhashed"])
async def test_verify_names_the_first_broken_entry(store: Store, tamper: str) -> None:
    expected = await _tampered(store, tamper)
    report = await store.audit_trail.verify({})
    assert not report.ok
    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == expected


async def test_the_chain_carries_on_past_a_forged_unhashed_entry(store: Store) -> None:
    await _tampered(store, "unhashed")
    new = await store.audit("hub", "hub.stop", "test-hub")
    rows = await store.audit_trail.entries()
    assert rows[-1]["id"] == new and rows[-1]["prev_hash"] == rows[-3]["hash"]


async def test_entries_from_before_the_chain_are_chained_once(tmp_path: Path) -> None:
    path = tmp_path / "csuhub.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, _, sql in MIGRATIONS:
        if version > 6:
            break
        for statement in _split_sql(sql):
            conn.execute(statement)
    conn.execute("PRAGMA user_version=6")
    for i in range(3):
        conn.execute(
            "INSERT INTO audit_log(ts, actor, action, target, details) VALUES(?,?,?,?,?)",
            (1000.0 + i, "hub", "recording.view" if i else "hub.start", f"t{i}", '{"a": 1}'),
        )
    conn.close()
    store = Store(path)
    await store.open()
    try:
        report = await store.audit_trail.verify({})
        assert report.ok and report.unchained_legacy == 3 and report.notes
        await store.audit("hub", "hub.start", "test-hub")
        rows = await store.audit_trail.entries()
        assert [r["id"] for r in rows] == [1, 2, 3, 4]
        assert rows[0]["prev_hash"] == GENESIS
        assert [r["class"] for r in rows] == ["admin", "consultation", "consultation", "admin"]
        assert all(hash_of(r) == r["hash"] for r in rows)
        report = await store.audit_trail.verify({})
        assert report.ok and report.entries == 4 and report.unchained_legacy == 0
        # the trigger is back
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.call(lambda c: c.execute("UPDATE audit_log SET actor='x'"))
    finally:
        await store.close()


async def test_the_documented_check_agrees_with_the_hub(store: Store) -> None:
    """docs/audit.md's Python is what a committee member would run: it must hold."""
    text = (Path(__file__).parent.parent / "docs" / "audit.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(code, namespace)  # our own documentation
    await _five(store)
    rows = await store.audit_trail.entries()
    assert [namespace["entry_hash"](r) for r in rows] == [r["hash"] for r in rows]  # type: ignore[operator]


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_entry = st.tuples(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    _text,
    st.none() | _text,
    _text,
    st.dictionaries(_text, st.integers() | _text | st.floats(allow_nan=False), max_size=3),
    st.sampled_from(["started", "ok", "refused", "failed"]),
    st.none() | st.integers(min_value=1, max_value=2**62),
)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(_entry, min_size=1, max_size=8), data=st.data())
def test_any_chain_verifies_and_any_change_to_one_field_is_named(
    entries: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    rows: list[list[Any]] = []
    prev = GENESIS
    for i, (ts, actor, target, reason, params, outcome, ref) in enumerate(entries, 1):
        values = [i, ts, actor or "x", None, None, None, "camera.ptz", target]
        values += [details_text(params), reason or None, outcome, ref, "admin", prev]
        assert canonical(values) == json.dumps(
            values, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        prev = entry_hash(values)
        rows.append([*values, prev])
    assert verify_rows(rows).ok
    victim = data.draw(st.integers(0, len(rows) - 1))
    field = data.draw(st.sampled_from([2, 7, 8, 9, 10, 11]))
    before = rows[victim][field]
    rows[victim][field] = data.draw(
        (st.integers(0, 9) if field == 11 else _text).filter(lambda v: v != before)
    )
    report = verify_rows(rows)
    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (victim + 1, "content")


async def test_appends_from_tasks_and_another_connection_keep_one_chain(store: Store) -> None:
    """The hub's tasks and a CLI process writing at once: every entry has its own
    predecessor (BEGIN IMMEDIATE serialises the read of the head and the insert)."""
    import threading

    def other_process() -> None:
        conn = sqlite3.connect(store.path, isolation_level=None, timeout=30)
        for i in range(40):
            append_event(conn, "cli", "token.create", f"t{i}")
        conn.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    await asyncio.gather(
        *(store.audit_event(ALICE, "camera.ptz", f"cam-{i}", pan=i / 100) for i in range(60))
    )
    await asyncio.to_thread(thread.join)
    report = await store.audit_trail.verify({})
    assert report.ok and report.entries == 100
