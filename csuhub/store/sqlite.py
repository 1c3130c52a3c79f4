"""The SQLite store: one database file, its repositories composed over it."""

from __future__ import annotations

from pathlib import Path

from csuhub.store.audit import AuditRepository
from csuhub.store.cameras import CameraRepository
from csuhub.store.db import Database
from csuhub.store.facade import StoreFacade
from csuhub.store.lockout import LoginFailureRepository
from csuhub.store.masks import MaskRepository
from csuhub.store.requisitions import RequisitionStore
from csuhub.store.retention import RetentionStore
from csuhub.store.segments import SegmentRepository
from csuhub.store.sessions import SessionRepository
from csuhub.store.tokens import TokenRepository
from csuhub.store.users import UserRepository


class Store(StoreFacade, Database):
    """Async facade over one SQLite database file.

    Callers reach an aggregate's repository (``store.retention.place(...)``) or
    the flat methods of :class:`~csuhub.store.facade.StoreFacade`;
    :meth:`~csuhub.store.db.Database.call` and ``transaction`` run SQL of one's
    own on the store's thread.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.segment_index = SegmentRepository(self)
        self.camera_register = CameraRepository(self)
        self.tokens = TokenRepository(self)
        self.audit_trail = AuditRepository(self)
        self.retention = RetentionStore(self)
        self.requisitions = RequisitionStore(self)
        self.users = UserRepository(self)
        self.sessions = SessionRepository(self)
        self.login_failures = LoginFailureRepository(self)
        self.masks = MaskRepository(self)
