"""Moved to the :mod:`csuhub.requisitions` package (workflow, scope, register, receipt).

A re-export kept only while ``csuhub/hub.py`` and ``csuhub/cli/requisitions.py``
import from here (and docs/architecture.md names this file); remove it once
they import ``csuhub.requisitions``.
"""

from csuhub.requisitions import (
    LEGAL_FRAMES,
    OUTCOMES,
    STATUSES,
    RequisitionConflict,
    RequisitionError,
    Requisitions,
    render_receipt,
)

__all__ = [
    "LEGAL_FRAMES",
    "OUTCOMES",
    "STATUSES",
    "RequisitionConflict",
    "RequisitionError",
    "Requisitions",
    "render_receipt",
]
