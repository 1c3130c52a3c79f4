"""The store's flat methods, kept for its many callers, each delegating to a
repository; a second implementation gets them by providing the repositories
(:class:`csuhub.store.protocols.Repositories`)."""

from __future__ import annotations

from concurrent.futures import Future
from functools import cached_property
from typing import TYPE_CHECKING, Any

from csuhub.security.context import principal_for
from csuhub.store.incidents import IncidentRepository
from csuhub.store.records import AuditRecord, CameraRow, Gap, NewSegment, Segment

if TYPE_CHECKING:
    from csuhub.security.identity import Identity
    from csuhub.security.permissions import Principal
    from csuhub.store.lockout import LoginFailureRepository
    from csuhub.store.masks import MaskRepository
    from csuhub.store.protocols import (
        AuditTrail,
        CameraRegister,
        SegmentIndex,
        TokenStore,
    )
    from csuhub.store.sessions import SessionRepository
    from csuhub.store.users import UserRepository


class StoreFacade:
    segment_index: SegmentIndex
    camera_register: CameraRegister
    tokens: TokenStore
    audit_trail: AuditTrail
    #: people and service accounts, browser sessions, failed logins, privacy
    #: masks and their lifts (each implementation provides its own)
    users: UserRepository
    sessions: SessionRepository
    login_failures: LoginFailureRepository
    masks: MaskRepository

    @cached_property
    def incidents(self) -> IncidentRepository:
        """Incidents, their cameras, bookmarks and notes (``csuhub.incidents``)."""
        return IncidentRepository(self)  # type: ignore[arg-type]  # a Store is its Database

    # -- metadata and the audit trail ------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self.audit_trail.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.audit_trail.set_meta(key, value)

    async def audit(
        self, actor: str, action: str, target: str | None = None, /, **details: Any
    ) -> int:
        """Append to the audit trail; returns the record id once it is durable.

        The first three are positional-only so that any detail name is free
        (a PTZ ``action``, an export ``target``...). Inside a request acting for
        ``actor``, the entry names the request's role, session or token and
        address too (``csuhub.security.context``); ``reason``, ``outcome`` and
        ``ref`` among the details fill those columns.
        """
        who = principal_for(actor)
        if who is not None:
            return await self.audit_event(who, action, target, **details)
        return await self.audit_trail.append(actor, action, target, **details)

    async def audit_event(
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
    ) -> int:
        """A chained entry naming who acted (role, session or token, address), the
        stated reason and the outcome (started, ok, refused, failed; ``ref`` is the
        entry an ending concludes); ``params`` are the action's parameters."""
        return await self.audit_trail.event(
            who, action, target, reason=reason, outcome=outcome, ref=ref, **params
        )

    async def audit_records(
        self, *, target: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        return await self.audit_trail.records(target=target, limit=limit)

    # -- segment index and gaps --------------------------------------------------

    async def add_segment(
        self,
        camera_id: str,
        *,
        start: float,
        end: float,
        size: int,
        path: str,
        sha256: str | None,
        status: str = "ok",
        gap_reason: str | None = None,
        gap_tolerance: float = 0.25,
    ) -> tuple[int, Gap | None]:
        """Index a segment; if it starts later than the camera's last recorded end
        (beyond ``gap_tolerance``), record the gap in the same transaction.

        A gap is only recorded with a known interruption (``gap_reason``), and then any
        hole beyond the media clock's precision is real: a recorder killed and back
        within a second still lost that second (a 1.5 s tolerance once hid it)."""
        return await self.segment_index.add(
            NewSegment(camera_id, start, end, size, path, sha256, status, gap_reason, gap_tolerance)
        )

    def submit_segment(self, new: NewSegment) -> Future[tuple[int, Gap | None]]:
        """``add_segment`` from any thread: segments handed in together share a commit."""
        return self.segment_index.submit(new)

    async def add_gap(self, camera_id: str, start: float, end: float, reason: str) -> Gap:
        return await self.segment_index.add_gap(camera_id, start, end, reason)

    async def segments(
        self,
        camera_id: str,
        start: float | None = None,
        end: float | None = None,
        *,
        limit: int = 100_000,
    ) -> list[Segment]:
        """Segments overlapping [start, end), in time order (indexed by camera and time)."""
        return await self.segment_index.segments(camera_id, start, end, limit=limit)

    async def segment(self, segment_id: int) -> Segment | None:
        return await self.segment_index.segment(segment_id)

    async def gaps(
        self, camera_id: str, start: float | None = None, end: float | None = None
    ) -> list[Gap]:
        return await self.segment_index.gaps(camera_id, start, end)

    async def last_segment_end(self, camera_id: str) -> float | None:
        return await self.segment_index.last_end(camera_id)

    async def camera_known(self, camera_id: str) -> bool:
        """Whether the register, the index, the gaps or the destruction register
        name the camera: one query, no rows fetched."""
        return await self.segment_index.camera_known(camera_id)

    async def segment_paths(self, camera_id: str | None = None) -> dict[str, int]:
        """path -> id for every indexed segment (start-up reconciliation)."""
        return await self.segment_index.paths(camera_id)

    async def set_segment_status(self, segment_ids: list[int], status: str) -> None:
        await self.segment_index.set_status(segment_ids, status)

    async def recorded_cameras(self) -> list[str]:
        return await self.segment_index.cameras()

    # -- API tokens ---------------------------------------------------------------

    async def create_token(
        self, name: str, role: str, secret_hash: str, user: str | None = None
    ) -> int:
        """Without ``user`` the token gets its own service account ``token:<name>``."""
        if user is None:
            return await self.tokens.create(name, role, secret_hash)
        return await self.tokens.create(name, role, secret_hash, user)

    async def token_identity(self, secret_hash: str) -> Identity | None:
        """The account behind a working token (its roles, scope, token name)."""
        return await self.tokens.identity(secret_hash)

    async def token_by_hash(self, secret_hash: str) -> tuple[str, str] | None:
        """``(name, role)`` of an unrevoked token, or None."""
        return await self.tokens.by_hash(secret_hash)

    async def list_tokens(self) -> list[dict[str, Any]]:
        return await self.tokens.list()

    async def revoke_token(self, name: str) -> bool:
        return await self.tokens.revoke(name)

    # -- cameras ----------------------------------------------------------------

    async def upsert_camera(self, camera_id: str, **fields: Any) -> None:
        """Insert or update a camera; only the given columns change on update.

        A new row needs ``name``, ``driver`` and ``state``.
        """
        await self.camera_register.upsert(camera_id, **fields)

    async def camera_by_ref(self, ref: str) -> CameraRow | None:
        return await self.camera_register.by_ref(ref)

    async def delete_camera(self, camera_id: str) -> bool:
        return await self.camera_register.delete(camera_id)

    async def set_camera_state(self, camera_id: str, state: str, reason: str = "") -> str | None:
        """Set a camera's state; returns the previous state (None if unknown camera)."""
        return await self.camera_register.set_state(camera_id, state, reason)

    async def list_cameras(self) -> list[CameraRow]:
        return await self.camera_register.list()

    async def get_camera(self, camera_id: str) -> CameraRow | None:
        return await self.camera_register.get(camera_id)
