"""The store: SQLite in WAL mode, reached only through this package.

All SQL lives here, in one repository module per aggregate (segments,
cameras, tokens, audit, retention, requisitions) run on one thread by
:mod:`csuhub.store.db`; :mod:`csuhub.store.protocols` is the boundary a second
implementation provides. This module only re-exports.
"""

from csuhub.store.db import DATABASE
from csuhub.store.records import AuditRecord, CameraRow, Gap, NewSegment, Segment, StoreError
from csuhub.store.sqlite import Store

__all__ = [
    "DATABASE",
    "AuditRecord",
    "CameraRow",
    "Gap",
    "NewSegment",
    "Segment",
    "Store",
    "StoreError",
]
