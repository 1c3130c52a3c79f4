"""Crash-safe destruction of marked segments: their files, then their rows.

Each batch a sweep destroys is three steps, each durable before the next:

1. **mark** the rows (``segments.sweep_id``, one transaction; only rows whose
   hold level allows it and that no hold can claim any more): the store's job;
2. **unlink** the files, off the event loop (:func:`destroy_files`);
3. **delete** the rows and add them to the destruction register (one
   transaction; :func:`destroy_batch`).

A ``kill -9`` anywhere leaves either marked rows (recovery unlinks what is
left and deletes them) or nothing to do. Files are only unlinked for rows that
are marked, so a held segment can never lose its file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from csuhub.recording.layout import is_contained

if TYPE_CHECKING:
    from csuhub.store.retention import Marked, RetentionStore

#: An unlink is mostly waiting on the file system (about 70 us here), so two
#: threads nearly halve a large sweep's wall time; two, not more, because the
#: recorders share these cores. Small batches (the every-minute sweep) stay serial.
UNLINK_THREADS = 2
PARALLEL_FROM = 256


class Destroyed(NamedTuple):
    """What one batch destroyed, and the files that refused."""

    segments: int
    bytes: int
    #: (segment id, message) of each file that could not be unlinked (row kept, unmarked)
    failures: list[tuple[int, str]]
    by_policy: dict[str, int]


@dataclass(slots=True)
class _Tally:
    """One line of the destruction register in the making: a camera's day, per policy."""

    segments: int
    bytes: int
    seconds: float
    start: float
    end: float


def _unlink(base: str, rows: Sequence[Marked]) -> list[tuple[Marked, str | None]]:
    """Unlink each row's file; pairs each row with its failure message, or None."""
    out: list[tuple[Marked, str | None]] = []
    for row in rows:
        if not is_contained(row.path):
            out.append((row, f"path outside the storage root: {row.path!r}"))
            continue
        try:
            os.unlink(f"{base}/{row.path}")
        except FileNotFoundError:
            pass  # already gone (a previous, interrupted, sweep): the row goes too
        except OSError as err:
            out.append((row, f"{row.path}: {err.strerror}"))
            continue
        out.append((row, None))
    return out


def destroy_files(
    root: Path, rows: list[Marked], tz: ZoneInfo, now: float
) -> tuple[list[int], list[tuple[int, str]], list[dict[str, Any]]]:
    """Unlink the marked files (thread); returns (done ids, failures, register rows)."""
    done: list[int] = []
    failed: list[tuple[int, str]] = []
    folders: set[str] = set()
    groups: dict[tuple[str, str, str], _Tally] = {}
    days: dict[int, str] = {}
    base = str(root)
    if len(rows) >= PARALLEL_FROM:
        # rows come by camera and time: contiguous chunks work in different folders
        size = -(-len(rows) // UNLINK_THREADS)
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
        with ThreadPoolExecutor(len(chunks), thread_name_prefix="csuhub-unlink") as pool:
            results = [pair for part in pool.map(partial(_unlink, base), chunks) for pair in part]
    else:
        results = _unlink(base, rows)
    for row, failure in results:
        if failure is not None:
            failed.append((row.id, failure))
            continue
        done.append(row.id)
        folders.add(row.path.rpartition("/")[0])
        hour = int(row.start // 3600)
        day = days.get(hour)
        if day is None:
            day = days[hour] = datetime.fromtimestamp(hour * 3600, tz).date().isoformat()
        tally = groups.get((row.camera_id, day, row.policy))
        if tally is None:
            groups[(row.camera_id, day, row.policy)] = _Tally(
                1, row.size, row.end - row.start, row.start, row.end
            )
        else:
            tally.segments += 1
            tally.bytes += row.size
            tally.seconds += row.end - row.start
            tally.start = min(tally.start, row.start)
            tally.end = max(tally.end, row.end)
    _remove_empty_folders(base, folders)
    register = [
        {
            "camera_id": camera_id,
            "day": day,
            "policy": policy,
            "segments": tally.segments,
            "bytes": tally.bytes,
            "seconds": tally.seconds,
            "start": tally.start,
            "end": tally.end,
            "at": now,
        }
        for (camera_id, day, policy), tally in groups.items()
    ]
    return done, failed, register


def _remove_empty_folders(base: str, folders: set[str]) -> None:
    """Empty hour, day, month, year folders go too (never the camera's own folder)."""
    for folder in sorted(folders, key=len, reverse=True):
        parts = folder.split("/")
        while len(parts) > 1:
            try:
                os.rmdir(f"{base}/{'/'.join(parts)}")
            except OSError:
                break
            parts.pop()


async def destroy_batch(
    store: RetentionStore, root: Path, tz: ZoneInfo, sweep_id: int, rows: list[Marked], now: float
) -> Destroyed:
    """Unlink a marked batch, then delete and register what went in one transaction;
    the rows whose file refused are unmarked (kept, tried again by a later sweep)."""
    done, failed, register = await asyncio.to_thread(destroy_files, root, rows, tz, now)
    if done:
        await store.destroyed(sweep_id, done, register)
    if failed:
        await store.unmark(sweep_id, [i for i, _ in failed])
    by_policy: dict[str, int] = {}
    for entry in register:
        by_policy[entry["policy"]] = by_policy.get(entry["policy"], 0) + entry["segments"]
    return Destroyed(len(done), sum(r["bytes"] for r in register), failed, by_policy)
