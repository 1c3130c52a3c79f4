"""From a closed file to its index row, off the event loop: one hashing thread
places a staged file, hashes and reads it (:func:`inspect_segment`, one pass),
and hands the row straight to the store's writer; the loop wakes once, when
the row is durable (``settle``).

Why its own module: the manager decides which cameras record and keeps the
alarms and events; this is the per-segment pipeline, where every thread
hand-off and loop wake is CPU the recording budget (B1) pays for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from csuhub.recording.layout import STAGING, hour_folder, place_file
from csuhub.recording.mp4info import inspect_segment
from csuhub.store.records import Gap, NewSegment

if TYPE_CHECKING:
    from csuhub.services import HubServices

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Indexed:
    """What indexing one file produced (made in the hashing thread)."""

    relative: str
    size: int
    duration: float
    status: str
    segment_id: int
    gap: Gap | None


#: Settles one file's indexing: (result, None), (None, None) for a file that
#: vanished, or (None, error).
Settle = Callable[[Indexed | None, BaseException | None], None]


class SegmentIndexer:
    """The hashing threads, for one storage root (made at each start)."""

    def __init__(self, hub: HubServices, root: Path) -> None:
        self.hub = hub
        self.root = root
        #: the root as a string ending in ``/``: the prefix every indexed file has
        self._root_prefix = os.path.join(os.fspath(root), "")
        #: each camera's folder under the root, as a string (made once per camera)
        self._camera_dirs: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="csuhub-hash")

    def submit(
        self,
        on_loop: Settle,
        camera_id: str,
        path: str | Path,
        start: float,
        duration: float | None,
        gap_reason: str,
    ) -> None:
        """Index one file; ``on_loop`` runs on the calling loop with the outcome.

        One hand-off: the hashing thread queues the row on the store's thread
        itself, and only the settler wakes the loop (``run_in_executor`` would wake
        it a second time, for a result nobody reads: _hash_and_submit never raises).
        """
        self._pool.submit(
            self._hash_and_submit,
            _settler(asyncio.get_running_loop(), on_loop),
            camera_id,
            path,
            start,
            duration,
            gap_reason,
        )

    def folder_of(self, relative: str) -> Path:
        return Path(self._root_prefix, relative).parent

    async def free_bytes(self, folder: Path) -> int:
        """Free space where ``folder`` is, asked off the loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, _free_bytes, folder)

    async def close(self) -> None:
        # waiting for a hash in progress must not stall the loop
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def _hash_and_submit(
        self,
        settle: Settle,
        camera_id: str,
        path: str | Path,
        start: float,
        duration: float | None,
        gap_reason: str,
    ) -> None:
        """In a hashing thread: place a staged file, hash and read it, then hand
        the row to the store's writer; ``settle`` wakes the loop once the row is
        durable."""
        # paths as strings: ``Path`` operations cost more than the link (tens of us)
        file = os.fspath(path)
        try:
            try:
                camera_dir = self._camera_dirs.get(camera_id)
                if camera_dir is None:
                    camera_dir = self._camera_dirs[camera_id] = os.fspath(self.root / camera_id)
                if os.path.dirname(file) == f"{camera_dir}/{STAGING}":
                    # a recorder's finished file: filed under its start here, in the
                    # same hand-off as its hash (a thread of its own cost a loop wake)
                    file = place_file(file, hour_folder(camera_dir, start), start)
                size, digest, info = inspect_segment(file)
            except FileNotFoundError:
                _LOGGER.warning("camera %s: segment %s vanished before indexing", camera_id, file)
                settle(None, None)
                return
            root = self._root_prefix
            if not file.startswith(root):
                raise ValueError(f"{file} is not under the storage root {self.root}")
            relative = file[len(root) :]
            if duration is None:
                duration = info.duration if info is not None else 0.0
            # fail closed: no whole video sample, or a file we cannot read, is not footage
            status = "ok" if duration > 0 and info is not None and info.playable else "damaged"
            if status == "damaged":
                _LOGGER.warning(
                    "camera %s: %s holds no playable video (%s); indexed as damaged",
                    camera_id,
                    relative,
                    "unreadable" if info is None else f"{info.video_samples} video samples",
                )
            stored = self.hub.store.submit_segment(
                NewSegment(
                    camera_id,
                    start,
                    start + duration,
                    size,
                    relative,
                    digest,
                    status,
                    gap_reason,
                )
            )
        except BaseException as err:
            settle(None, err)
            return

        indexed_duration = duration

        def done(future: Future[tuple[int, Gap | None]]) -> None:
            error = future.exception()
            if error is not None:
                settle(None, error)
                return
            segment_id, gap = future.result()
            settle(Indexed(relative, size, indexed_duration, status, segment_id, gap), None)

        stored.add_done_callback(done)


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _settler(loop: asyncio.AbstractEventLoop, on_loop: Settle) -> Settle:
    """A thread-safe way to run ``on_loop`` on the loop (a closed loop is ignored:
    the row is durable either way, and the start-up reconciliation knows it)."""

    def settle(result: Indexed | None, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(on_loop, result, error)
        except RuntimeError:  # the loop is closed
            pass

    return settle
