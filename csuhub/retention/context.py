"""What a retention policy sees during one sweep."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from csuhub.hub import Hub
    from csuhub.store import Store

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class CameraRetention:
    """How long one camera's footage is kept: its retention period (the camera's
    own, else the site default) and the minimum its authorisation sets."""

    camera_id: str
    retention: float
    minimum: float | None = None


@dataclass(slots=True)
class SweepContext:
    hub: Hub
    now: float
    cap: float
    law: str
    default_retention: float
    cameras: dict[str, CameraRetention]
    storage_root: Path
    #: every camera with footage in the index, configured or not (read once per sweep)
    recorded: set[str] = field(default_factory=set)
    dry_run: bool = False
    alarm: Callable[..., None] = field(default=lambda *a, **k: None)

    @property
    def store(self) -> Store:
        return self.hub.store

    def retention_of(self, camera_id: str) -> CameraRetention:
        """Cameras no longer configured keep the default: their footage still expires."""
        found = self.cameras.get(camera_id)
        if found is None:
            return CameraRetention(camera_id, min(self.default_retention, self.cap))
        return found

    def disk(self) -> tuple[int, int]:
        """(total, free) bytes of the filesystem holding the recordings."""
        usage = shutil.disk_usage(self.storage_root)
        return usage.total, usage.free


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """One expired segment a sweep is about to destroy, as the ``retention_hold``
    hook sees it. Frozen and typed so a plugin reading a field that does not exist
    fails in its own tests, not silently in production (a dict let ``camera`` pass
    for ``camera_id``)."""

    id: int
    camera_id: str
    start: float
    end: float
    #: relative to the storage root
    path: str
    #: the policy that expired it: ``max_age``, ``storage_pressure``, ``legal_cap``...
    policy: str
