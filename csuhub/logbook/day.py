"""A logbook day: the local calendar day in the hub's time zone.

A shift hands over by the wall clock, so a day is midnight to midnight where
the centre is, not a UTC day: 23 hours on the spring change, 25 in autumn
(zoneinfo gives the right instants; a fixed 86,400 s would lose or repeat an
hour of entries across two days).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from zoneinfo import ZoneInfo

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)
FIRST_YEAR = 1970
LAST_YEAR = 9998  # the day after must still be a date


class DayError(ValueError):
    """A day that is not ``YYYY-MM-DD`` (the message says so, for a 400)."""


def parse_day(text: str) -> dt.date:
    """``YYYY-MM-DD`` exactly (ASCII digits; no time, no week or ordinal forms)."""
    if not isinstance(text, str) or not _DAY.match(text):
        raise DayError("a day is YYYY-MM-DD, e.g. 2026-03-29")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise DayError(f"{text} is not a date") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise DayError(f"a day from {FIRST_YEAR} to {LAST_YEAR}")
    return day


def midnight(day: dt.date, tz: str) -> float:
    """The instant the day begins where the hub is. A midnight that a clock
    change skips (a few zones move at 00:00) reads, with ``fold=0``, in the
    offset before the change: that is the instant of the change itself, the
    day's first."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz)).timestamp()


def day_bounds(day: dt.date, tz: str) -> tuple[float, float]:
    """``[start, end)`` in epoch seconds."""
    return midnight(day, tz), midnight(day + dt.timedelta(days=1), tz)


def today(tz: str, now: float | None = None) -> dt.date:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(tz)).date()


def day_of(epoch: float, tz: str) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(tz)).date()


def clock(epoch: float, tz: str) -> dt.datetime:
    """The local time of an instant (its offset tells the two 02:30 of autumn apart)."""
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(tz))
