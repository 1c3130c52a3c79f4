"""``csuhub audit verify|export`` on a real data directory, anchors included:
a tail cut after an anchor is named, and an export checks against the chain."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import sqlite3
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from csuhub.audit.anchors import (
    AnchorError,
    anchored,
    anchoring,
    read_anchors,
    seconds_to_midnight,
    write_anchor,
)
from csuhub.audit.chain import COLUMNS, hash_of
from csuhub.audit.export import read_csv, read_json, write_csv
from csuhub.security.permissions import Principal, permissions_of
from csuhub.store import Store
from csuhub.store.audit import append_event

BOB = Principal("bob", "user", ("operator",), permissions_of(["operator"]), via="s1", source="::1")


def make_trail(data: Path, count: int = 6, anchor_after: int | None = None) -> list[int]:
    async def build() -> list[int]:
        store = Store(data / "csuhub.db")
        await store.open()
        try:
            ids = []
            for i in range(count):
                ids.append(await store.transaction(_entry, i))
                if anchor_after is not None and i + 1 == anchor_after:
                    head = await store.audit_trail.head()
                    assert head is not None
                    write_anchor(data, head)
            return ids
        finally:
            await store.close()

    data.mkdir(parents=True, exist_ok=True)
    return asyncio.run(build())


def _entry(conn: sqlite3.Connection, i: int) -> int:
    return append_event(
        conn,
        BOB.name,
        "recording.view",
        f"cam-{i % 2}",
        role=BOB.role,
        via=BOB.via,
        source=BOB.source,
        reason=f"call {i}",
        params={"start": i, "end": i + 60},
        ts=float(i),
    )


def verify(data: Path, env: dict[str, str]) -> tuple[int, dict[str, object]]:
    proc = run_cli("audit", "verify", "--data", str(data), "--json", env=env)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    document = json.loads("\n".join(itertools.dropwhile(lambda s: s != "{", lines)))
    return proc.returncode, document


def test_verify_passes_then_names_a_tail_cut_after_an_anchor(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    ids = make_trail(data, anchor_after=4)
    code, report = verify(data, cli_env)
    assert code == 0, report
    assert report["ok"] is True and report["entries"] == 6 and report["anchors_checked"] == 1
    conn = sqlite3.connect(data / "csuhub.db")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE id >= ?", (ids[3],))
    conn.commit()
    conn.close()
    code, report = verify(data, cli_env)
    assert code == 1
    assert report["broken"] == {
        "id": ids[3],
        "kind": "truncated",
        "message": f"anchored entry {ids[3]} is missing: entries were removed "
        f"(the chain ends at {ids[2]})",
    }


def test_verify_human_output_names_the_edited_entry(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    ids = make_trail(data)
    conn = sqlite3.connect(data / "csuhub.db")
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET reason='nothing to see' WHERE id=?", (ids[2],))
    conn.commit()
    conn.close()
    proc = run_cli("audit", "verify", "--data", str(data), env=cli_env)
    assert proc.returncode == 1
    assert f"BROKEN at entry {ids[2]} (content)" in proc.stdout


def test_anchor_files_are_write_once_and_read_only(tmp_path: Path) -> None:
    path = write_anchor(tmp_path, (7, "a" * 64, 12.5), now=86400.0)
    assert path.name == "19700102T000000Z-7.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    with pytest.raises(FileExistsError):
        write_anchor(tmp_path, (7, "b" * 64, 12.5), now=86400.0)
    (anchor,) = read_anchors(tmp_path)
    assert (anchor.id, anchor.hash) == (7, "a" * 64)
    write_anchor(tmp_path, (7, "c" * 64, 12.5), now=86401.0)
    with pytest.raises(AnchorError, match="different hashes"):
        anchored(read_anchors(tmp_path))


def test_a_stray_or_malformed_anchor_fails_verify_closed(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    make_trail(data, anchor_after=2)
    (data / "audit" / "anchors" / "19700101T000000Z-1.json").write_text('{"id": 1}')
    code, report = verify(data, cli_env)
    assert code == 1 and "not an anchor" in str(report["broken"])


def test_midnight_is_the_next_utc_day() -> None:
    assert seconds_to_midnight(86400.0 * 3 + 3600) == 82800.0
    assert seconds_to_midnight(86400.0 * 3) == 86400.0


async def test_the_lifespan_anchors_daily_and_at_stop(tmp_path: Path) -> None:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        hub = SimpleNamespace(store=store, data_dir=tmp_path)
        await store.audit("hub", "hub.start", "h")
        async with anchoring(hub, interval=0.05):  # type: ignore[arg-type]
            await asyncio.sleep(0.3)
            first = read_anchors(tmp_path)
            assert len(first) == 1  # the head did not move: one anchor only
            await store.audit("hub", "hub.stop", "h")
        last = read_anchors(tmp_path)
        head = await store.audit_trail.head()
        assert head is not None and (last[-1].id, last[-1].hash) == head[:2]
        assert len(last) == 2
    finally:
        await store.close()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_round_trips_and_checks_against_the_chain(
    cli_env: dict[str, str], tmp_path: Path, fmt: str
) -> None:
    data = tmp_path / "data"
    ids = make_trail(data, count=8)
    out = tmp_path / f"audit.{fmt}"
    args = ["audit", "export", "--data", str(data), "--from", "2", "--to", "6"]
    proc = run_cli(*args, "--format", fmt, "--out", str(out), env=cli_env)
    assert proc.returncode == 0, proc.stderr
    with open(out, encoding="utf-8", newline="") as handle:
        text = handle.read()
    entries = read_csv(text) if fmt == "csv" else read_json(text)
    assert [e["id"] for e in entries] == ids[2:6]
    for entry in entries:
        assert hash_of(entry) == entry["hash"]
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    assert entries[0]["reason"] == "call 2" and entries[0]["role"] == "operator"
    # never over a previous export
    again = run_cli(*args, "--out", str(out), env=cli_env)
    assert again.returncode == 2 and "never overwrites" in again.stderr


def test_export_to_stdout_and_a_bad_range(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_trail(data, count=3)
    proc = run_cli("audit", "export", "--data", str(data), "--from", "0", "--to", "10", env=cli_env)
    assert proc.returncode == 0 and len(read_csv(proc.stdout)) == 3
    bad = run_cli("audit", "export", "--data", str(data), "--from", "5", "--to", "1", env=cli_env)
    assert bad.returncode == 2 and "after" in bad.stderr


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "id": st.integers(-2, 10) | _json_values,
            "hash": st.sampled_from(["a" * 64, "A" * 64, "a" * 63]) | _json_values,
            "ts": st.floats() | _json_values,
            "written_at": st.floats() | _json_values,
        },
    )
    | _json_values,
    named=st.integers(0, 10),
)
def test_an_anchor_file_is_an_anchor_or_an_error_never_a_crash(body: object, named: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "audit" / "anchors"
        directory.mkdir(parents=True)
        (directory / f"20260101T000000Z-{named}.json").write_text(json.dumps(body))
        try:
            (anchor,) = read_anchors(Path(tmp))
        except AnchorError as err:
            assert str(err)
            return
        assert anchor.id == named >= 1 and len(anchor.hash) == 64


_cell = st.none() | st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(0, 4e9, allow_nan=False),
            _cell,
            _cell,
            st.sampled_from(["ok", "started", "refused", "failed"]),
            st.none() | st.integers(1, 2**40),
        ),
        max_size=6,
    )
)
def test_csv_export_reads_back_exactly(
    rows: list[tuple[float, str | None, str | None, str, int | None]],
) -> None:
    entries = []
    for i, (ts, target, reason, outcome, ref) in enumerate(rows, 1):
        entry = dict(zip(COLUMNS, [i, ts, "a", None, None, None, "x", target, "{}"], strict=False))
        entry.update(reason=reason, outcome=outcome, ref=ref, prev_hash="0" * 64)
        entry["class"] = "admin"
        entry["hash"] = hash_of(entry)
        entries.append(entry)
    buffer = io.StringIO()
    write_csv(entries, buffer)
    assert read_csv(buffer.getvalue()) == entries


def test_anchor_by_hand_then_a_cut_is_found(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    ids = make_trail(data, count=3)
    first = run_cli("audit", "anchor", "--data", str(data), "--json", env=cli_env)
    assert first.returncode == 0 and json.loads(first.stdout)["anchored"] == ids[-1]
    again = run_cli("audit", "anchor", "--data", str(data), env=cli_env)
    assert again.returncode == 0 and "anchored already" in again.stdout
    conn = sqlite3.connect(data / "csuhub.db")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE id = ?", (ids[-1],))
    conn.commit()
    conn.close()
    code, report = verify(data, cli_env)
    assert code == 1 and report["broken"]["kind"] == "truncated"  # type: ignore[index]
