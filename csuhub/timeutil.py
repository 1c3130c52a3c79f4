"""Times on the command line and in URLs: ISO 8601 or epoch seconds."""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo

#: 10000-01-01T00:00Z: beyond it no date can be printed.
MAX_EPOCH = 253402300800.0
#: epoch seconds as people write them, ASCII only: ``float()`` also reads
#: ``١٢٣`` (Arabic-Indic digits) as 123 and ``1_000`` as 1000
_EPOCH = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class TimeError(ValueError):
    pass


def parse_time(value: str, tz: str = "Europe/Paris") -> float:
    """``2026-11-25T14:00``, ``2026-11-25T13:00:00Z``, ``...+01:00`` or epoch seconds.

    A time without an offset is in the hub's time zone (what operators read
    on the wall), not UTC.
    """
    text = value.strip()
    if _EPOCH.fullmatch(text):  # 1e300 is a float, but no time: refused here, once
        return check_epoch(float(text), value)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimeError(
            f"{value[:40]!r} is not a time (use 2026-11-25T14:00 or epoch seconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return check_epoch(moment.timestamp(), value)


def check_epoch(epoch: float, shown: object = None) -> float:
    """``epoch`` if it is a time this hub can store and print: finite, 1970..9999.

    Every time from outside goes through here, whether it came as text or as
    a JSON number: a requisition registered from 1e15 (the year 31 million)
    was stored, then every listing that printed it failed.
    """
    if not math.isfinite(epoch) or not 0 <= epoch < MAX_EPOCH:
        what = repr(shown)[:40] if shown is not None else f"{epoch!r}"
        raise TimeError(f"{what} is not a time (out of range: 1970 to 9999 only)")
    return float(epoch)


def iso(epoch: float, tz: str = "Europe/Paris") -> str:
    """A stored time for people; never raises (a time out of the calendar, stored
    before ``check_epoch`` guarded the way in, is shown as epoch seconds)."""
    try:
        return dt.datetime.fromtimestamp(epoch, ZoneInfo(tz)).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError, TypeError):
        return f"{epoch!r} (epoch seconds, outside the calendar)"


def iso_or_blank(epoch: float | None, tz: str = "Europe/Paris") -> str:
    """:func:`iso`, or an empty cell for a time not set yet (a register's ``closed_at``)."""
    return "" if epoch is None else iso(epoch, tz)
