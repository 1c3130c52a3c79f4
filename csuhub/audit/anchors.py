"""Anchors: the chain head, written daily (and when the hub stops) to write-once files.

A chain alone shows an entry was edited, deleted or moved, but not that the
newest entries were cut off: the shortened chain is still a valid chain. Each
anchor records the head (id, hash, time) in its own file under
``<data_dir>/audit/anchors/``, created with ``O_EXCL`` (never overwritten),
fsynced with its directory and made read-only; ``csuhub audit verify`` then
requires every anchored (id, hash) to be in the chain. Copying the anchor
files off the machine (docs/audit.md) makes them evidence against someone who
could also rewrite the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)

ANCHORS = Path("audit") / "anchors"
_NAME = re.compile(r"^(\d{8}T\d{6}Z)-(\d{1,19})\.json$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
DAY = 86400.0


class AnchorError(Exception):
    """An anchor file that cannot be read or does not hold an anchor: verify fails
    closed on it rather than ignore it."""


@dataclass(frozen=True)
class Anchor:
    id: int
    hash: str
    ts: float
    written_at: float
    file: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hash": self.hash, "ts": self.ts, "written_at": self.written_at}


def anchor_dir(data_dir: Path) -> Path:
    return data_dir / ANCHORS


def read_anchors(data_dir: Path) -> list[Anchor]:
    """Every anchor, oldest first. A file in the directory not named like an
    anchor, or one that does not hold a well-formed anchor, raises AnchorError."""
    directory = anchor_dir(data_dir)
    if not directory.is_dir():
        return []
    found: list[Anchor] = []
    for path in sorted(directory.iterdir()):
        match = _NAME.match(path.name)
        if match is None or not path.is_file() or path.is_symlink():
            raise AnchorError(f"{path}: not an anchor file (anchors only in {directory})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise AnchorError(f"{path}: unreadable anchor ({err})") from None
        anchor = _parse(data, path)
        if anchor.id != int(match.group(2)):
            raise AnchorError(f"{path}: names entry {match.group(2)} but holds {anchor.id}")
        found.append(anchor)
    found.sort(key=lambda a: (a.written_at, a.id))
    return found


def _parse(data: Any, path: Path) -> Anchor:
    if not isinstance(data, dict):
        raise AnchorError(f"{path}: not a JSON object")
    rid, digest, ts, written = (data.get(k) for k in ("id", "hash", "ts", "written_at"))
    if (
        isinstance(rid, bool)
        or not isinstance(rid, int)
        or rid < 1
        or not isinstance(digest, str)
        or not _HASH.match(digest)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ts, written))
    ):
        raise AnchorError(f"{path}: not an anchor (id, hash, ts, written_at)")
    return Anchor(rid, digest, float(ts), float(written), path.name)


def anchored(anchors: list[Anchor]) -> dict[int, str]:
    """id -> hash for ``verify``; two anchors disagreeing on one id is itself a break."""
    out: dict[int, str] = {}
    for anchor in anchors:
        if out.setdefault(anchor.id, anchor.hash) != anchor.hash:
            raise AnchorError(f"two anchors name entry {anchor.id} with different hashes")
    return out


def write_anchor(data_dir: Path, head: tuple[int, str, float], now: float | None = None) -> Path:
    """Write the head to a new read-only file; never replaces one."""
    rid, digest, ts = head
    now = time.time() if now is None else now
    directory = anchor_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}-{rid}.json"
    body = json.dumps(
        {"id": rid, "hash": digest, "ts": ts, "written_at": now}, sort_keys=True
    ).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o444)
    try:
        os.write(fd, body + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


async def anchor_now(hub: Hub) -> Path | None:
    """Anchor the current head unless the newest anchor already holds it."""
    head = await hub.store.audit_trail.head()  # type: ignore[attr-defined]
    if head is None:
        return None
    data_dir = hub.data_dir
    anchors = await asyncio.to_thread(_safe_read, data_dir)
    if anchors and anchors[-1].id == head[0]:
        return None
    path = await asyncio.to_thread(write_anchor, data_dir, head)
    _LOGGER.info("audit: anchored entry %d in %s", head[0], path)
    return path


def _safe_read(data_dir: Path) -> list[Anchor]:
    try:
        return read_anchors(data_dir)
    except AnchorError as err:  # verify reports it; anchoring carries on
        _LOGGER.error("audit anchors: %s", err)
        return []


def seconds_to_midnight(now: float) -> float:
    """Until the next UTC midnight: one anchor per calendar day."""
    current = datetime.fromtimestamp(now, UTC)
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max((midnight - current).total_seconds(), 1.0)


@asynccontextmanager
async def anchoring(hub: Hub, interval: float | None = None) -> AsyncIterator[None]:
    """The hub's anchoring: daily while it runs (``interval`` seconds when given,
    for tests), and once more as it stops. Enter it after the store opens and
    before ``hub.stop`` is audited, so the last anchor holds that entry."""

    async def daily() -> None:
        while True:
            wait = interval if interval is not None else seconds_to_midnight(time.time())
            await asyncio.sleep(wait)
            try:
                await anchor_now(hub)
            except Exception:  # a full disk must not stop the hub; the next day retries
                _LOGGER.exception("audit: cannot write the daily anchor")

    task = asyncio.create_task(daily(), name="audit-anchors")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await anchor_now(hub)
        except Exception:
            _LOGGER.exception("audit: cannot write the anchor at stop")
