"""The store's boundary: what a second implementation (the PostgreSQL store of
the scale-out work) provides, and all that callers may rely on.

Each aggregate has a repository; their methods take and return plain values
and the dataclasses of :mod:`csuhub.store.records`, :mod:`csuhub.store.holds`
and :mod:`csuhub.store.sweeps`, never a driver's rows, connections or errors.
``Store.call()`` and ``Store.transaction()`` are the SQLite implementation's own
(they run functions of a ``sqlite3.Connection``) and are not part of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from csuhub.store.holds import Hold
from csuhub.store.records import AuditRecord, CameraRow, Gap, NewSegment, Segment
from csuhub.store.sweeps import Marked, MarkRequest

if TYPE_CHECKING:
    from csuhub.security.identity import Identity
    from csuhub.security.permissions import Principal
    from csuhub.store.audited import Entry


class SegmentIndex(Protocol):
    async def add(self, new: NewSegment) -> tuple[int, Gap | None]:
        """Index a segment (a path indexed already returns its id, and no gap) with
        the gap before it, when ``new.gap_reason`` says why there is one."""

    def submit(self, new: NewSegment) -> Future[tuple[int, Gap | None]]:
        """``add`` from any thread (the recorder's hashing threads)."""

    async def add_gap(self, camera_id: str, start: float, end: float, reason: str) -> Gap: ...

    async def segments(
        self,
        camera_id: str,
        start: float | None = None,
        end: float | None = None,
        *,
        limit: int = 100_000,
    ) -> list[Segment]:
        """Overlapping [start, end), in time order."""

    async def segment(self, segment_id: int) -> Segment | None: ...

    async def gaps(
        self, camera_id: str, start: float | None = None, end: float | None = None
    ) -> list[Gap]: ...

    async def last_end(self, camera_id: str) -> float | None: ...

    async def camera_known(self, camera_id: str) -> bool:
        """Whether the register, the index, the gaps or the destruction register name it."""

    async def paths(self, camera_id: str | None = None) -> dict[str, int]:
        """path -> id of every indexed segment (start-up reconciliation)."""

    async def set_status(self, segment_ids: list[int], status: str) -> None: ...

    async def cameras(self) -> list[str]:
        """The cameras with indexed footage."""


class CameraRegister(Protocol):
    async def upsert(self, camera_id: str, **fields: Any) -> None: ...

    async def set_state(self, camera_id: str, state: str, reason: str = "") -> str | None: ...

    async def get(self, camera_id: str) -> CameraRow | None: ...

    async def by_ref(self, ref: str) -> CameraRow | None: ...

    async def list(self) -> list[CameraRow]: ...

    async def delete(self, camera_id: str) -> bool: ...


class TokenStore(Protocol):
    async def create(
        self,
        name: str,
        role: str,
        secret_hash: str,
        user: str | None = None,
        audit: Entry | None = None,
    ) -> int: ...

    async def identity(self, secret_hash: str) -> Identity | None: ...

    async def by_hash(self, secret_hash: str) -> tuple[str, str] | None: ...

    async def list(self) -> list[dict[str, Any]]: ...

    async def revoke(self, name: str, audit: Entry | None = None) -> bool: ...


class AuditTrail(Protocol):
    async def append(
        self, actor: str, action: str, target: str | None = None, /, **details: Any
    ) -> int: ...

    async def event(
        self,
        who: Principal,
        action: str,
        target: str | None = None,
        /,
        *,
        reason: str | None = None,
        outcome: str = "ok",
        ref: int | None = None,
        **params: Any,
    ) -> int: ...

    async def entries(
        self, start: float | None = None, end: float | None = None, **kw: Any
    ) -> list[dict[str, Any]]: ...

    async def head(self) -> tuple[int, str, float] | None: ...

    async def records(
        self, *, target: str | None = None, limit: int = 100
    ) -> list[AuditRecord]: ...

    async def last_target(self, action: str) -> str | None: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class RetentionRepository(Protocol):
    async def place(
        self,
        cameras: list[str],
        start: float,
        end: float,
        *,
        level: int,
        kind: str,
        ref: str,
        reason: str,
        actor: str,
    ) -> dict[str, dict[str, Any]]: ...

    async def release(self, kind: str, ref: str, actor: str) -> dict[str, Any]: ...

    async def holds(
        self, *, active: bool = True, kind: str | None = None, camera_id: str | None = None
    ) -> list[Hold]: ...

    async def mark_alerted(self, hold_ids: list[int]) -> None: ...

    async def begin_sweep(self, origin: str) -> int: ...

    async def end_sweep(self, sweep_id: int, state: str = "done") -> None: ...

    async def unfinished_sweeps(self) -> list[int]: ...

    async def mark(
        self,
        sweep_id: int,
        expiries: Sequence[MarkRequest],
        *,
        limit: int,
        exclude: Iterable[int] = (),
    ) -> tuple[list[Marked], int]: ...

    async def candidates(
        self, request: MarkRequest, limit: int, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float, float, str]]: ...

    async def mark_ids(
        self, sweep_id: int, approved: Sequence[tuple[MarkRequest, Sequence[int]]]
    ) -> list[Marked]: ...

    async def marked(self, sweep_id: int) -> list[Marked]: ...

    async def destroyed(
        self, sweep_id: int, ids: list[int], register: list[dict[str, Any]]
    ) -> None: ...

    async def unmark(self, sweep_id: int, ids: list[int]) -> None: ...

    async def sweeps(self, limit: int = 20) -> list[dict[str, Any]]: ...

    async def oldest_unheld(
        self, need: int, cutoffs: dict[str, float], default_cutoff: float
    ) -> tuple[dict[str, float], int]: ...

    async def expired_summary(
        self, camera_id: str, before: float, max_level: int
    ) -> dict[str, Any] | None: ...

    async def overview(self) -> dict[str, dict[str, Any]]: ...

    async def destructions(
        self,
        camera_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[dict[str, Any]]: ...

    async def record_kept(self, sweep_id: int, kept: list[dict[str, Any]]) -> None: ...

    async def kept(
        self, camera_id: str | None = None, sweep_id: int | None = None
    ) -> list[dict[str, Any]]: ...

    async def open_incident(
        self, reference: str, cameras: list[str], start: float, end: float | None, title: str = ""
    ) -> int: ...

    async def close_incident(self, incident_id: int, end: float | None = None) -> bool: ...

    async def incidents(self) -> list[dict[str, Any]]: ...


class RequisitionRepository(Protocol):
    async def create(self, fields: dict[str, Any], actor: str) -> tuple[int, dict[str, Any]]:
        """A reference registered already raises ``DuplicateReference``."""

    async def set_scope(self, req_id: int, scope: dict[str, Any]) -> None: ...

    async def get(self, req_id: int) -> dict[str, Any] | None: ...

    async def by_reference(self, reference: str) -> dict[str, Any] | None: ...

    async def list(self, status: str | None = None) -> list[dict[str, Any]]: ...

    async def transition(
        self, req_id: int, allowed_from: tuple[str, ...], status: str, **fields: Any
    ) -> bool: ...

    async def add_extraction(self, **fields: Any) -> int: ...

    async def extractions(self, req_id: int | None = None) -> list[dict[str, Any]]: ...

    async def coverage(
        self, camera_id: str, start: float, end: float
    ) -> list[tuple[float, float, bool]]: ...

    async def stats(self) -> dict[str, Any]: ...


class Repositories(Protocol):
    """A store: its lifecycle and one repository per aggregate."""

    path: Path
    segment_index: SegmentIndex
    camera_register: CameraRegister
    tokens: TokenStore
    audit_trail: AuditTrail
    retention: RetentionRepository
    requisitions: RequisitionRepository

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...
