"""Times on the command line and in URLs: ISO 8601 or epoch seconds."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

#: 10000-01-01T00:00Z: beyond it no date can be printed.
MAX_EPOCH = 253402300800.0


class TimeError(ValueError):
    pass


def parse_time(value: str, tz: str = "Europe/Paris") -> float:
    """``2026-11-25T14:00``, ``2026-11-25T13:00:00Z``, ``...+01:00`` or epoch seconds.

    A time without an offset is in the hub's time zone (what operators read
    on the wall), not UTC.
    """
    text = value.strip()
    try:
        epoch = float(text)
    except ValueError:
        pass
    else:  # "nan", "inf" and 1e300 are floats, but no time: refuse them here, once
        if not math.isfinite(epoch) or not 0 <= epoch < MAX_EPOCH:
            raise TimeError(f"{value[:40]!r} is not a time (epoch seconds out of range)")
        return epoch
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimeError(
            f"{value!r} is not a time (use 2026-11-25T14:00 or epoch seconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.timestamp()


def iso(epoch: float, tz: str = "Europe/Paris") -> str:
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(tz)).isoformat(timespec="milliseconds")
