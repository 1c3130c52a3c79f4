"""Judicial requisitions: the domain workflow, from the legal hold to the closing.

``workflow`` (the ``Requisitions`` service and its status flow), ``scope``
(what footage exists for a request, and why the rest does not), ``register``
(the CSV register for audits), ``receipt`` (the printed handover page, from
``receipt.html``) and ``model`` (fields, statuses, errors). Their rows are
kept by ``csuhub.store.requisitions``.
"""

from csuhub.requisitions.model import (
    LEGAL_FRAMES,
    OUTCOMES,
    STATUSES,
    RequisitionConflict,
    RequisitionError,
    UnknownCamera,
)
from csuhub.requisitions.receipt import render_receipt
from csuhub.requisitions.workflow import Requisitions

__all__ = [
    "LEGAL_FRAMES",
    "OUTCOMES",
    "STATUSES",
    "RequisitionConflict",
    "RequisitionError",
    "Requisitions",
    "UnknownCamera",
    "render_receipt",
]
