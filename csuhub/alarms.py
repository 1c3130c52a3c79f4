"""Alarms are states, not log lines.

An operator paged once per ffmpeg retry (every few seconds while a disk is
full), or once per retention sweep, learns to ignore the pager. An
:class:`AlarmBoard` keeps one state per (kind, camera): the first
``raise_alarm`` fires :class:`~csuhub.events.AlarmRaised`; while the
condition lasts, further calls are silent except for a reminder every
``remind_every`` seconds; ``clear`` fires :class:`~csuhub.events.AlarmCleared`
once, when the condition ends.

Conditions that are re-evaluated in rounds (a retention sweep) use
``begin_round`` / ``end_round``: an alarm of the round's kinds that was not
raised again during the round has ended and is cleared.

``raise_alarm`` returns whether operators were told now, so an owner that
also fires a domain event (``RecordingAlert``, ``RetentionAlert``) fires it
only then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from csuhub.bus import EventBus
from csuhub.events import AlarmCleared, AlarmRaised

#: a still-active alarm is repeated this often (seconds)
DEFAULT_REMIND_EVERY = 3600.0

Key = tuple[str, str | None]


@dataclass
class Alarm:
    kind: str
    camera_id: str | None
    message: str
    #: wall clock when the condition began (for people); monotonic for the reminder
    since: float
    told_at: float
    raised_in_round: bool = True


class AlarmBoard:
    """The active alarms of one component (``source``), fired on ``bus``."""

    def __init__(
        self,
        bus: EventBus,
        source: str,
        *,
        remind_every: float = DEFAULT_REMIND_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.source = source
        self.remind_every = remind_every
        self._clock = clock
        self._alarms: dict[Key, Alarm] = {}

    def raise_alarm(self, kind: str, camera_id: str | None, message: str) -> bool:
        """The condition holds now; True when operators are told (first time or reminder)."""
        key = (kind, camera_id)
        now = self._clock()
        alarm = self._alarms.get(key)
        if alarm is None:
            alarm = Alarm(kind, camera_id, message, since=time.time(), told_at=now)
            self._alarms[key] = alarm
            self._fire(alarm, reminder=False)
            return True
        alarm.raised_in_round = True
        alarm.message = message
        if now - alarm.told_at < self.remind_every:
            return False
        alarm.told_at = now
        self._fire(alarm, reminder=True)
        return True

    def clear(self, kind: str, camera_id: str | None = None, message: str = "") -> bool:
        """The condition ended; True if an alarm was active (and is now cleared)."""
        alarm = self._alarms.pop((kind, camera_id), None)
        if alarm is None:
            return False
        self.bus.fire(
            AlarmCleared(
                source=self.source,
                kind=kind,
                camera_id=camera_id,
                message=message or f"{kind} ended",
                since=alarm.since,
                duration=max(0.0, time.time() - alarm.since),
            )
        )
        return True

    def clear_camera(self, camera_id: str, message: str = "") -> int:
        """Every alarm of one camera ended (e.g. it records again); how many were."""
        keys = [key for key in self._alarms if key[1] == camera_id]
        for kind, _ in keys:
            self.clear(kind, camera_id, message)
        return len(keys)

    def begin_round(self) -> None:
        """A re-evaluation starts: every alarm must be raised again to stay active."""
        for alarm in self._alarms.values():
            alarm.raised_in_round = False

    def end_round(self, kinds: Iterable[str], message: str = "") -> int:
        """Clear the alarms of ``kinds`` not raised since ``begin_round``; how many."""
        wanted = set(kinds)
        stale = [
            key
            for key, alarm in self._alarms.items()
            if key[0] in wanted and not alarm.raised_in_round
        ]
        for kind, camera_id in stale:
            self.clear(kind, camera_id, message)
        return len(stale)

    def is_active(self, kind: str, camera_id: str | None = None) -> bool:
        return (kind, camera_id) in self._alarms

    def active(self) -> list[Alarm]:
        return sorted(self._alarms.values(), key=lambda a: (a.kind, a.camera_id or ""))

    def _fire(self, alarm: Alarm, *, reminder: bool) -> None:
        self.bus.fire(
            AlarmRaised(
                source=self.source,
                kind=alarm.kind,
                camera_id=alarm.camera_id,
                message=alarm.message,
                since=alarm.since,
                reminder=reminder,
            )
        )
