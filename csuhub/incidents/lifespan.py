"""What the hub does for incidents when it starts and stops, and the hub's
incident attributes, kept here so that ``csuhub/hub.py`` stays lifecycle only.

``HubIncidents`` gives the hub ``incidents`` (the desk, built by ``setup()``),
``calls`` (the same desk, as the call lines' ``CallDesk``) and
``call_lines`` (the running lines). :func:`start_incidents` starts the desk
and then the lines, after the cameras: a call that arrives at once finds the
cameras it should link; at unwind the lines stop first, then the desk.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from csuhub.incidents.desk import IncidentDesk
from csuhub.incidents.lines import start_lines
from csuhub.services import BuiltBySetup

if TYPE_CHECKING:
    from csuhub.incidents.calls import CallDesk
    from csuhub.protocols import CallLine

__all__ = ["HubIncidents", "IncidentDesk", "start_incidents"]


class HubIncidents:
    """The hub's incident attributes (a mixin of ``Hub``)."""

    incidents = BuiltBySetup[IncidentDesk]()

    @property
    def calls(self) -> CallDesk:
        """Where call lines report (``await hub.calls.report(CallReport)``)."""
        return self.incidents

    @property
    def call_lines(self) -> Mapping[str, CallLine]:
        """The running call lines by id (read-only)."""
        return MappingProxyType(self.incidents.lines)


async def start_incidents(hub: Any, stack: AsyncExitStack) -> None:
    """Start the desk, then the call lines; both undone by ``stack``."""
    desk: IncidentDesk = hub.incidents
    await desk.start()
    stack.push_async_callback(desk.stop)
    await start_lines(hub, desk.lines, stack)
