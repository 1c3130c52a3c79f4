"""Moved: the manager to :mod:`csuhub.retention.manager`, one sweep to
:mod:`csuhub.retention.sweep`, destruction to :mod:`csuhub.retention.destroy`.

A re-export kept only while ``csuhub/hub.py`` imports ``RetentionManager`` from
here (and docs/architecture.md names this file); remove it once they are updated.
"""

from csuhub.retention.manager import RetentionManager
from csuhub.retention.sweep import SweepReport

__all__ = ["RetentionManager", "SweepReport"]
