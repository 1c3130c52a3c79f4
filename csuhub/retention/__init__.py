"""Retention: policies decide what may expire, holds veto, the sweep destroys.

Two rules are enforced here, whatever plugins do:

* **never too long**: every camera's footage older than the jurisdiction's
  legal cap (30 days in France, CSI L252-5) is destroyed unless a judicial
  requisition holds it, even when no policy is configured;
* **never a held segment**: policies only reach unheld footage; incident and
  flagged footage (preservation holds) wins over the retention period but not
  over the cap; a requisition (legal hold) wins over both.
"""

from csuhub.retention.context import CameraRetention, SweepContext
from csuhub.retention.manager import RetentionManager
from csuhub.retention.sweep import SweepReport

__all__ = ["CameraRetention", "RetentionManager", "SweepContext", "SweepReport"]
