"""Start-up reconciliation: make the index and the disk agree after a crash.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub.events import RecordingAlert
from csuhub.recording.layout import SEGMENT_NAME, segment_start

if TYPE_CHECKING:
    from csuhub.hub import Hub
    from csuhub.recording.manager import RecordingManager

_LOGGER = logging.getLogger(__name__)

NAME = SEGMENT_NAME
HOUR_PATH = re.compile(r"^\d{4}/\d{2}/\d{2}/\d{2}$")
_CAMERA = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _unindexed(root: Path, known: set[str], since: dict[str, float | None]) -> list[Path]:
    """Segment files under root not in ``known``, from each camera's last hour on."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for camera_dir in root.iterdir():
        if not camera_dir.is_dir() or not _CAMERA.match(camera_dir.name):
            continue
        last = since.get(camera_dir.name)
        cutoff = time.strftime("%Y/%m/%d/%H", time.gmtime(last - 3600)) if last else None
        for dirpath, dirnames, filenames in os.walk(camera_dir):
            rel = Path(dirpath).relative_to(camera_dir).as_posix()
            dirnames.sort()
            if HOUR_PATH.match(rel):
                dirnames.clear()
                if cutoff is not None and rel < cutoff:
                    continue
                for name in filenames:
                    if NAME.match(name):
                        relative = f"{camera_dir.name}/{rel}/{name}"
                        if relative not in known:
                            found.append(Path(dirpath) / name)
    return sorted(found)


def _missing(root: Path, paths: dict[str, int]) -> list[int]:
    return [segment_id for relative, segment_id in paths.items() if not (root / relative).exists()]


def _cameras(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


async def reconcile_storage(hub: Hub, manager: RecordingManager) -> dict[str, Any]:
    """Index unknown files, mark vanished ones; what was done, as counts."""
    root = manager.root
    known = await hub.store.segment_paths()
    cameras = await asyncio.to_thread(_cameras, root)
    since = {camera: await hub.store.last_segment_end(camera) for camera in cameras}
    files = await asyncio.to_thread(_unindexed, root, set(known), since)
    recovered, damaged = 0, 0
    for path in files:
        camera_id = path.relative_to(root).parts[0]
        start = segment_start(path.name)
        if start is None:
            continue
        indexed = await manager.index_segment(camera_id, path, start, None, "hub down")
        if indexed is None:
            continue
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
