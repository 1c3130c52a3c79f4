"""What a call line tells the hub, and what it may ask of it: the call-line contract.

A call line (the SIP monitoring leg, a CAD webhook, a vendor's CTI) turns what
its peer sends into a :class:`CallReport` and hands it to the hub's
:class:`CallDesk`. The desk owns everything after that: the incident opened or
updated, its nearest cameras, the footage hold, the bus events, the audit and
the logbook. So a line never touches the store, and two lines that report the
same call (a PBX forking to two legs) cannot open two incidents.

``(line, call_id)`` is a call's identity: a line reports a call as often as it
learns something new (ringing, answered elsewhere, abandoned, ended; a webhook
re-posting the same external id) and the desk opens an incident only the first
time. Later reports update that incident and never open a second one.

A line that receives calls over the hub's own HTTP server (a webhook) also
implements :class:`HttpCallLine`; the hub routes
``POST /api/call-lines/{line}/calls`` to it with the raw body, so that the line
checks its signature over the exact bytes before anything parses them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from csuhub.refs import IncidentRef, Location, Priority

__all__ = ["CallDesk", "CallRefused", "CallReport", "CallState", "HttpCallLine"]

#: longest caller number, category, external id, and free text a line may report
MAX_CALLER = 64
MAX_CALL_ID = 256
MAX_CATEGORY = 64
MAX_TEXT = 4000


class CallState(StrEnum):
    """Where a call is, as the line knows it. ``RINGING`` is the first report;
    the others update the incident (an abandoned call is still an incident: the
    caller may have been cut off)."""

    RINGING = "ringing"
    #: another leg of the fork (the desk's phone) answered
    ANSWERED = "answered"
    #: the caller hung up before anyone answered (SIP CANCEL)
    ABANDONED = "abandoned"
    #: the answered call is over (SIP BYE)
    ENDED = "ended"
    #: a dispatch system's report (webhook): no telephony state
    DISPATCHED = "dispatched"


def _text(value: object, what: str, limit: int, *, empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if not empty and not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n" for c in value) or "\x7f" in value:
        raise ValueError(f"{what} contains control characters")


@dataclass(frozen=True, slots=True)
class CallReport:
    """One thing a line learnt about one call. Checked on construction, so a
    line's parser that lets something odd through fails in the line's own tests,
    not in the desk."""

    #: the call line's id in the site file (``call_lines: - id: sip``)
    line: str
    #: the line's identity for the call: SIP Call-ID, the CAD's external id
    call_id: str
    state: CallState = CallState.RINGING
    #: the caller's number as the line received it (P-Asserted-Identity, From);
    #: None when withheld
    caller: str | None = None
    location: Location | None = None
    category: str = "call"
    priority: Priority = Priority.NORMAL
    #: free text from the dispatcher
    text: str = ""
    #: when the call reached the line (epoch seconds); the footage hold starts
    #: ``incidents.hold_before`` earlier
    received_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        _text(self.line, "line", 63)
        _text(self.call_id, "call_id", MAX_CALL_ID)
        if not isinstance(self.state, CallState):
            raise TypeError(f"state must be a CallState, not {self.state!r}")
        if self.caller is not None:
            _text(self.caller, "caller", MAX_CALLER)
        if self.location is not None and not isinstance(self.location, Location):
            raise TypeError(f"location must be a Location, not {type(self.location).__name__}")
        _text(self.category, "category", MAX_CATEGORY)
        if not isinstance(self.priority, Priority):
            raise TypeError(f"priority must be a Priority, not {self.priority!r}")
        _text(self.text, "text", MAX_TEXT, empty=True)
        if isinstance(self.received_at, bool) or not isinstance(self.received_at, int | float):
            raise TypeError("received_at must be a number of seconds")
        if not math.isfinite(self.received_at) or self.received_at < 0:
            raise ValueError("received_at must be a finite, non-negative time")


class CallDesk(Protocol):
    """The hub's side of the contract (``hub.calls``)."""

    async def report(self, call: CallReport) -> IncidentRef:
        """Open the incident of a new call, or update the incident of a known one
        (same ``line`` and ``call_id``); answer it with its nearest cameras linked.
        Audited, logged in the logbook, and fired on the bus before it returns."""
        ...


class CallRefused(Exception):
    """An HTTP call line refuses a request: ``status`` is what the hub answers
    (400 bad body, 401 bad or missing signature, 409 stale or replayed, 413 too
    large). ``reason`` goes to the caller and the log; it never carries the
    secret or the signature."""

    def __init__(self, status: int, reason: str) -> None:
        if status not in (400, 401, 403, 409, 413, 415, 422):
            raise ValueError(f"a refused call answers 4xx, not {status}")
        super().__init__(reason)
        self.status = status
        self.reason = reason


@runtime_checkable
class HttpCallLine(Protocol):
    """A call line that receives its calls through the hub's HTTP server."""

    #: the largest body the hub reads for this line, in bytes
    max_body: int

    async def receive(
        self, headers: Mapping[str, str], body: bytes, remote: str | None
    ) -> CallReport:
        """Authenticate ``body`` (the exact bytes received) and parse it into a
        report; raise :class:`CallRefused` to refuse. Must not report the call
        itself: the hub passes the answer to ``hub.calls.report``."""
        ...
