"""Start-up reconciliation: make the index and the disk agree after a crash.

* Files a dead run left in a camera's staging folder (``.incoming``: ffmpeg
  wrote them, the hub died before placing them) are placed in the layout,
  at their start estimated from the file (last write minus its media
  duration, never before the camera's last indexed end), and indexed.
* Files on disk that the index does not know (the hub died before indexing,
  or ffmpeg died mid-segment) are indexed, their duration and validity read
  in-process from the file (no process per file). The
  walk is limited to the hour folders from each camera's last indexed
  segment on (and whole cameras the index has never seen): the index, not
  the tree, is the source of truth.
* A file without a whole video sample is kept and indexed as ``damaged``, with a
  gap over it: never silently lost, never silently deleted.
* Index rows whose file is gone are marked ``missing`` and reported. That
  check stats every file, in an executor, in batches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub.events import RecordingAlert
from csuhub.recording.layout import (
    STAGING,
    already_placed,
    place,
    segment_order,
    staged_key,
)
from csuhub.recording.mp4info import Mp4Error, read_info

if TYPE_CHECKING:
    from csuhub.recording.manager import RecordingManager
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)

HOUR_PATH = re.compile(r"^\d{4}/\d{2}/\d{2}/\d{2}$")
_CAMERA = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _unindexed(root: Path, known: set[str], since: dict[str, float | None]) -> list[Path]:
    """Segment files under root not in ``known``, from each camera's last hour on,
    by camera and in the order they were placed."""
    found: list[tuple[str, tuple[float, int], Path]] = []
    if not root.is_dir():
        return found
    for camera_dir in root.iterdir():
        if not camera_dir.is_dir() or not _CAMERA.match(camera_dir.name):
            continue
        last = since.get(camera_dir.name)
        cutoff = time.strftime("%Y/%m/%d/%H", time.gmtime(last - 3600)) if last else None
        for dirpath, dirnames, filenames in os.walk(camera_dir):
            rel = Path(dirpath).relative_to(camera_dir).as_posix()
            # the staging folder holds no placed segment (see _staged)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if HOUR_PATH.match(rel):
                dirnames.clear()
                if cutoff is not None and rel < cutoff:
                    continue
                for name in filenames:
                    order = segment_order(name)
                    if order is not None:
                        relative = f"{camera_dir.name}/{rel}/{name}"
                        if relative not in known:
                            found.append((camera_dir.name, order, Path(dirpath) / name))
    return [path for _, _, path in sorted(found)]


def _staged(root: Path) -> list[tuple[str, Path]]:
    """(camera, file) left in each camera's staging folder, in the order ffmpeg wrote them."""
    found: list[tuple[str, tuple[str, int], Path]] = []
    if not root.is_dir():
        return []
    for camera_dir in root.iterdir():
        staging = camera_dir / STAGING
        if not _CAMERA.match(camera_dir.name) or not staging.is_dir():
            continue
        for path in staging.iterdir():
            key = staged_key(path.name)
            if key is not None and path.is_file():
                found.append((camera_dir.name, key, path))
    return [(camera, path) for camera, _, path in sorted(found)]


def file_timing(path: Path) -> tuple[float, float]:
    """(estimated start, media duration) of a file no segment list reported.

    Blocking. ffmpeg writes a fragment every half second and the last one at
    the end, so the last write is the end of the media, give or take a
    fragment; a file unreadable as MP4 counts as no media at all.
    """
    with path.open("rb") as handle:
        written = os.fstat(handle.fileno()).st_mtime
        try:
            duration = read_info(handle).duration
        except Mp4Error:
            duration = 0.0
    return written - duration, duration


async def place_unlisted(
    path: Path, folder_for: Callable[[float], Path], floor: float | None, at: float | None = None
) -> tuple[Path, float, float] | None:
    """Place a staged file no segment list reported: (its final path, start, end),
    or None if it was placed already or has vanished.

    It starts at ``at`` when its start is known (the file right after a listed
    one), else at its estimate (:func:`file_timing`), never before ``floor``
    (where the camera's footage already ends: no overlap). ``folder_for``
    gives the hour folder of a start.
    """
    try:
        if await asyncio.to_thread(already_placed, path):
            return None
        estimate, duration = await asyncio.to_thread(file_timing, path)
    except FileNotFoundError:
        return None
    start = at if at is not None else estimate if floor is None else max(estimate, floor)
    final = await asyncio.to_thread(place, path, folder_for(start), start)
    return final, start, start + duration


def _missing(root: Path, paths: dict[str, int]) -> list[int]:
    return [segment_id for relative, segment_id in paths.items() if not (root / relative).exists()]


def _cameras(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


async def reconcile_storage(hub: HubServices, manager: RecordingManager) -> dict[str, Any]:
    """Index unknown files, mark vanished ones; what was done, as counts."""
    root = manager.root
    recovered, damaged = 0, 0
    floors: dict[str, float | None] = {}
    for camera_id, path in await asyncio.to_thread(_staged, root):
        if camera_id not in floors:
            floors[camera_id] = await hub.store.last_segment_end(camera_id)
        try:
            placed = await place_unlisted(
                path, partial(manager.segment_dir, camera_id), floors[camera_id]
            )
        except OSError as err:  # left where it is, for the next start; never deleted
            _LOGGER.error("camera %s: could not place %s: %s", camera_id, path, err)
            continue
        if placed is None:
            continue
        final, start, floors[camera_id] = placed
        indexed = await manager.index_segment(camera_id, final, start, None, "hub down")
        if indexed is not None:
            recovered, damaged = (
                (recovered + 1, damaged) if indexed[1] == "ok" else (recovered, damaged + 1)
            )
    known = await hub.store.segment_paths()
    cameras = await asyncio.to_thread(_cameras, root)
    since = {camera: await hub.store.last_segment_end(camera) for camera in cameras}
    files = await asyncio.to_thread(_unindexed, root, set(known), since)
    ends: dict[str, float] = {}
    for path in files:
        camera_id = path.relative_to(root).parts[0]
        order = segment_order(path.name)
        if order is None:
            continue
        # a file placed after another of the same second (-2, -3...) began where that
        # one ended: the name alone would stack them on one start
        start = max(order[0], ends.get(camera_id, order[0]))
        indexed = await manager.index_segment(camera_id, path, start, None, "hub down")
        if indexed is None:
            continue
        ends[camera_id] = start + indexed[2]
        if indexed[1] == "ok":
            recovered += 1
        else:
            damaged += 1
    missing = await asyncio.to_thread(_missing, root, known)
    if missing:
        await hub.store.set_segment_status(missing, "missing")
        hub.bus.fire(
            RecordingAlert(
                camera_id=None,
                kind="missing_files",
                message=f"{len(missing)} indexed segment(s) are gone from {root}",
            )
        )
    report = {"recovered": recovered, "damaged": damaged, "missing": len(missing)}
    if any(report.values()):
        _LOGGER.warning("recording reconciliation: %s", report)
    return report
