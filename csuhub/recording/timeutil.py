"""Moved to :mod:`csuhub.timeutil` (times are not a recording concern).

A re-export kept only while ``csuhub/cli_recordings.py`` and ``csuhub/cli_retention.py``
still import it from here; remove it once they import ``csuhub.timeutil``.
"""

from csuhub.timeutil import MAX_EPOCH, TimeError, check_epoch, iso, parse_time

__all__ = ["MAX_EPOCH", "TimeError", "check_epoch", "iso", "parse_time"]
