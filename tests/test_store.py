from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from csuhub.store import Store, StoreError
from csuhub.store.migrations import LATEST


async def test_wal_and_migrations(tmp_path: Path) -> None:
    store = Store(tmp_path / "db" / "csuhub.db")
    await store.open()
    try:
        assert (await store.journal_mode()).lower() == "wal"
        assert await store.schema_version() == LATEST
    finally:
        await store.close()
    # reopening does not re-run migrations
    store = Store(tmp_path / "db" / "csuhub.db")
    await store.open()
    assert await store.schema_version() == LATEST
    await store.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "csuhub.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={LATEST + 1}")
    conn.close()
    store = Store(path)
    with pytest.raises(StoreError, match="newer than this csuhub"):
        await store.open()


async def test_audit_is_append_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        rid = await store.audit("alice", "export.create", "cam-1", reason="PV 2026/123")
        records = await store.audit_records(target="cam-1")
        assert [(r.id, r.actor, r.details["reason"]) for r in records] == [
            (rid, "alice", "PV 2026/123")
        ]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.call(lambda conn: conn.execute("UPDATE audit_log SET actor='x'"))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await store.call(lambda conn: conn.execute("DELETE FROM audit_log"))
    finally:
        await store.close()


async def test_store_work_runs_off_the_loop(tmp_path: Path) -> None:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    loop_thread = threading.get_ident()
    try:
        thread = await store.call(lambda _conn: threading.get_ident())
        assert thread != loop_thread
        # the loop keeps ticking while the store works
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.gather(*(store.audit("t", "a", str(i)) for i in range(200)))
        task.cancel()
        assert ticks > 10
    finally:
        await store.close()


async def test_camera_rows_and_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        await store.upsert_camera("cam-1", name="Grand Place", driver="simcam", state="connecting")
        assert await store.set_camera_state("cam-1", "online") == "connecting"
        assert await store.set_camera_state("nope", "online") is None
        row = await store.get_camera("cam-1")
        assert row is not None and row.state == "online" and row.name == "Grand Place"
    finally:
        await store.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from csuhub.store import Store

    async def main():
        store = Store(Path(sys.argv[1]))
        await store.open()
        i = 0
        while True:
            await store.audit("writer", "tick", str(i))
            print(i, flush=True)  # acknowledged only once durable
            i += 1

    asyncio.run(main())
    """
)


def test_audit_records_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "csuhub.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 50:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    targets = {int(r[0]) for r in conn.execute("SELECT target FROM audit_log")}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert set(range(acknowledged + 1)) <= targets


async def test_audit_details_may_use_any_name(tmp_path: Path) -> None:
    """Regression: a detail named 'action' collided with the parameter (PTZ audit crashed)."""
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        await store.audit("op", "camera.ptz", "cam-1", action="move", target="x", actor="y")
        (record,) = await store.audit_records(target="cam-1")
        assert record.action == "camera.ptz"
        assert record.details == {"action": "move", "target": "x", "actor": "y"}
    finally:
        await store.close()


async def test_a_short_hole_after_a_known_interruption_is_a_gap(tmp_path: Path) -> None:
    # seen: ffmpeg killed and back within 1.2 s left a hole with no gap record
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        await store.add_segment("cam", start=0.0, end=10.0, size=1, path="cam/0.mp4", sha256=None)
        _, gap = await store.add_segment(
            "cam",
            start=11.2,
            end=20.0,
            size=1,
            path="cam/1.mp4",
            sha256=None,
            gap_reason="ffmpeg killed (signal 9, SIGKILL)",
        )
        assert gap is not None and (gap.start, gap.end) == (10.0, 11.2)
        # the media clock's own jitter is not a gap
        _, gap = await store.add_segment(
            "cam",
            start=20.004,
            end=30.0,
            size=1,
            path="cam/2.mp4",
            sha256=None,
            gap_reason="ffmpeg exited",
        )
        assert gap is None
        assert [(g.start, g.end) for g in await store.gaps("cam", 0, 40)] == [(10.0, 11.2)]
    finally:
        await store.close()


async def _index(store: Store, path: str, start: float, end: float, reason: str | None = "x"):
    return await store.add_segment(
        "cam", start=start, end=end, size=1, path=path, sha256=None, gap_reason=reason
    )


async def test_segments_closing_together_share_one_commit(tmp_path: Path) -> None:
    """Several cameras' segments handed in at once are written in one transaction,
    each with its own gap, and a bad one fails alone."""
    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        for i in range(5):
            await store.add_segment(
                f"cam-{i}", start=0.0, end=10.0, size=1, path=f"cam-{i}/0.mp4", sha256=None
            )
        commits = []

        def trace(statement: str) -> None:
            if statement == "COMMIT":
                commits.append(statement)

        await store.call(lambda conn: conn.set_trace_callback(trace))
        # the store's thread is busy: all six arrive while it is
        blocker = store.call(lambda _conn: threading.Event().wait(0.2))
        results = await asyncio.gather(
            blocker,
            *(
                store.add_segment(
                    f"cam-{i}",
                    start=12.0,
                    end=20.0,
                    size=1,
                    path=f"cam-{i}/1.mp4",
                    sha256=None,
                    gap_reason="ffmpeg exited",
                )
                for i in range(5)
            ),
            store.add_segment(
                "cam-x", start=0.0, end=1.0, size=None, path="cam-x/0.mp4", sha256=None
            ),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        await store.call(lambda conn: conn.set_trace_callback(None))
        assert commits == ["COMMIT"]
        assert isinstance(results[-1], sqlite3.IntegrityError)
        for i, (_, gap) in enumerate(results[1:-1]):
            assert gap is not None and (gap.camera_id, gap.start, gap.end) == (f"cam-{i}", 10, 12)
            assert len(await store.segments(f"cam-{i}")) == 2
        assert await store.segments("cam-x") == []
    finally:
        await store.close()


async def test_the_last_end_cache_answers_as_the_database_would(tmp_path: Path) -> None:
    """The gap before a segment is measured from the footage that started before
    it, whatever wrote the index meanwhile: an out-of-order segment, another
    process, a statement of one's own on the store's connection."""
    db = tmp_path / "csuhub.db"
    store = Store(db)
    await store.open()
    try:
        await _index(store, "cam/0.mp4", 0.0, 10.0)
        _, gap = await _index(store, "cam/1.mp4", 20.0, 30.0)
        assert gap is not None and (gap.start, gap.end) == (10.0, 20.0)
        # out of order: starts before the newest, measured from what precedes it
        _, gap = await _index(store, "cam/early.mp4", 12.0, 14.0)
        assert gap is not None and (gap.start, gap.end) == (10.0, 12.0)
        # a path indexed twice: its id, no gap, nothing cached from it
        first, _ = await _index(store, "cam/2.mp4", 31.0, 40.0)
        again, gap = await _index(store, "cam/2.mp4", 31.0, 40.0)
        assert (again, gap) == (first, None)
        # another process destroys the newest footage
        other = sqlite3.connect(db)
        other.execute("DELETE FROM segments WHERE path IN ('cam/1.mp4', 'cam/2.mp4')")
        other.commit()
        other.close()
        _, gap = await _index(store, "cam/3.mp4", 50.0, 60.0)
        assert gap is not None and (gap.start, gap.end) == (14.0, 50.0)
        # a statement of one's own on the store's connection
        await store.call(lambda conn: conn.execute("DELETE FROM segments WHERE path='cam/3.mp4'"))
        _, gap = await _index(store, "cam/4.mp4", 61.0, 70.0)
        assert gap is not None and (gap.start, gap.end) == (14.0, 61.0)
        # without a known interruption, no gap (but the cache still moves on)
        _, gap = await _index(store, "cam/5.mp4", 80.0, 90.0, reason=None)
        assert gap is None
        _, gap = await _index(store, "cam/6.mp4", 91.0, 95.0)
        assert gap is not None and (gap.start, gap.end) == (90.0, 91.0)
    finally:
        await store.close()


async def test_index_writes_from_a_worker_thread(tmp_path: Path) -> None:
    """``submit_segment`` takes a segment from any thread (the hashing threads)."""
    from csuhub.store import NewSegment

    store = Store(tmp_path / "csuhub.db")
    await store.open()
    try:
        future = await asyncio.to_thread(
            store.submit_segment, NewSegment("cam", 0.0, 10.0, 1, "cam/0.mp4", "ab")
        )
        segment_id, gap = await asyncio.wrap_future(future)
        assert gap is None
        assert (await store.segment(segment_id)).sha256 == "ab"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_the_last_end_cache_does_not_survive_a_reopen(tmp_path: Path) -> None:
    """Seen in review: the cache's (data_version, total_changes) restart with a new
    connection, so after close, an outside delete and reopen, the same number of writes
    matched the old state and the stale cache measured the gap from deleted footage."""
    db = tmp_path / "csuhub.db"
    store = Store(db)
    await store.open()
    try:
        await _index(store, "cam/0.mp4", 0.0, 10.0)
        await _index(store, "cam/1.mp4", 10.0, 20.0)
        await store.close()
        other = sqlite3.connect(db)
        other.execute("DELETE FROM segments WHERE path='cam/1.mp4'")
        other.commit()
        other.close()
        await store.open()
        # as many changes on the new connection as the old one had made
        for _ in range(2):
            await store.call(
                lambda conn: conn.execute("UPDATE segments SET size=size WHERE path='cam/0.mp4'")
            )
        _, gap = await _index(store, "cam/2.mp4", 30.0, 40.0)
        assert gap is not None and (gap.start, gap.end) == (10.0, 30.0)
    finally:
        await store.close()


async def test_a_segment_queued_as_the_store_closes_is_answered(tmp_path: Path) -> None:
    """Seen in review: a flush queued behind the close never ran, its segment's future
    was never answered (the recorder hung) and no later flush was ever scheduled."""
    from csuhub.store import NewSegment, StoreError

    store = Store(tmp_path / "csuhub.db")
    await store.open()
    gate = threading.Event()
    blocker = store.submit(lambda conn: gate.wait(5))  # hold the store's thread
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0.05)  # the close is queued on the store's thread...
    future = store.submit_segment(NewSegment("cam", 0.0, 10.0, 1, "cam/0.mp4", "ab"))
    gate.set()  # ...before the segment's flush
    await closing
    await asyncio.wrap_future(blocker)
    with pytest.raises(StoreError, match="closed"):
        await asyncio.wait_for(asyncio.wrap_future(future), 5)
    await store.open()
    try:
        segment_id, _ = await asyncio.wait_for(
            store.add_segment("cam", start=0.0, end=10.0, size=1, path="cam/0.mp4", sha256=None),
            5,
        )
        assert segment_id > 0
    finally:
        await store.close()
