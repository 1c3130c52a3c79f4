"""What a retention policy sees during one sweep."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from csuhub.retention.simulation import DryRunHolds

if TYPE_CHECKING:
    from csuhub.hub import Hub

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class CameraRetention:
    """How long one camera's footage is kept: its retention period (the camera's
    own, else the site default) and the minimum its authorisation sets."""

    camera_id: str
    retention: float
    minimum: float | None = None


@dataclass(frozen=True, slots=True)
class SweepContext:
    """Frozen, and its collections read-only: the core reads ``now``, ``cap`` and
    ``dry_run`` again after the policies have planned, so a policy that could set
    ``dry_run = False`` or move ``now`` would turn a dry run into destruction or
    expire held footage early. The store is not on it: policies write through
    ``csuhub.api.policy_store``, which in a dry run records the holds in
    ``simulation`` (always there in a dry run, never in a real sweep)."""

    hub: Hub
    now: float
    cap: float
    law: str
    default_retention: float
    cameras: Mapping[str, CameraRetention]
    storage_root: Path
    #: every camera with footage in the index, configured or not (read once per sweep)
    recorded: frozenset[str] = frozenset()
    dry_run: bool = False
    alarm: Callable[..., None] = field(default=lambda *a, **k: None)
    #: the holds a dry run's policies would place or release (the core's; see
    #: :mod:`csuhub.retention.simulation`)
    simulation: DryRunHolds | None = None

    def __post_init__(self) -> None:
        if self.dry_run and self.simulation is None:
            object.__setattr__(self, "simulation", DryRunHolds())
        elif not self.dry_run and self.simulation is not None:
            raise ValueError("only a dry run simulates holds")
        object.__setattr__(self, "cameras", MappingProxyType(dict(self.cameras)))
        object.__setattr__(self, "recorded", frozenset(self.recorded))

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
