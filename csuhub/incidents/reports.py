"""How a call line's report relates to the incident of its call: the rules
the desk (``csuhub.incidents.desk``) applies before it writes anything.

A call only moves on (ringing -> answered -> ended: a report overtaken by a
later one cannot ring it again); a closed incident's call id reported again
as a new call is another call (the id was reused); and a report whose
address is the one known already has not moved the incident, even though the
incident now carries the geocoder's point too.
"""

from __future__ import annotations

import time

from csuhub.incidents.calls import CallReport, CallState
from csuhub.incidents.model import Incident
from csuhub.refs import Location

#: how far along a call is: a report never moves it back
STAGE = {
    CallState.RINGING: 0,
    CallState.DISPATCHED: 0,
    CallState.ANSWERED: 1,
    CallState.ABANDONED: 2,
    CallState.ENDED: 2,
}
#: the states a new call is first reported in
FIRST = frozenset({CallState.RINGING, CallState.DISPATCHED})


def stage(state: str | None) -> int:
    """How far along a stored call state is (-1: none yet)."""
    try:
        return STAGE[CallState(state)] if state is not None else -1
    except ValueError:  # a state this version does not know: let any report move it
        return -1


def new_call(closed: Incident, call: CallReport) -> bool:
    """A closed incident's call id reported as a call that reached the line after
    the incident closed, in a first state: the id was reused, it is another call.
    Anything else is a late report of the closed one."""
    received = call.received_at or time.time()
    return call.state in FIRST and received > (closed.closed_at or closed.updated_at)


def moves(old: Location | None, new: Location | None) -> bool:
    """Whether a report's location differs from the incident's: the same address
    without a point is the place already known (the geocoder's point is kept)."""
    if new is None or new == old:
        return False
    return not (old is not None and not new.has_point and new.address == old.address)


def differs(incident: Incident, call: CallReport) -> list[str]:
    """The facts a report would change (for the log when it may not)."""
    names = []
    if call.caller is not None and call.caller != incident.caller:
        names.append("caller")
    if moves(incident.location, call.location):
        names.append("location")
    if call.category != incident.category:
        names.append("category")
    if call.priority is not incident.priority:
        names.append("priority")
    if call.text and call.text != incident.text:
        names.append("text")
    return names


__all__ = ["FIRST", "STAGE", "differs", "moves", "new_call", "stage"]
