"""The hub's selectors: one question to the plugins at run time, one answer.

Each selector is a ``firstresult`` hook whose spec declares what a failing
plugin means (``csuhub.selectors``): passed over, or the answer itself
(``retention_hold`` keeps the segment). Plugins receive the hub, so the
questions are asked through it (``hub.hold_decision(segment)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from csuhub.refs import IncidentRef, Location, WallRef
from csuhub.retention.context import SegmentRef
from csuhub.selectors import Selection, select

if TYPE_CHECKING:
    from csuhub.plugins import CsuhubPluginManager
    from csuhub.protocols import DiscoveredCamera

__all__ = ["HubSelectors"]


class HubSelectors:
    """The selector methods of ``Hub`` (a mixin: ``pm`` is the hub's)."""

    pm: CsuhubPluginManager

    def __init__(self) -> None:
        #: (selector, plugin) pairs already logged at error level (one traceback each)
        self._selector_failures: set[tuple[str, str]] = set()

    def driver_for(self, camera: DiscoveredCamera) -> str | None:
        kwargs = {"hub": self, "camera": camera}
        answer = select(self.pm, "driver_for_discovery", kwargs, self._selector_failures).answer
        return cast(str | None, answer)

    def hold_decision(self, segment: SegmentRef) -> Selection:
        """Ask ``retention_hold`` about one segment. ``failed`` means a plugin could not
        answer and the segment is kept (fail closed), ``error`` saying why."""
        if not isinstance(segment, SegmentRef):
            raise TypeError(f"retention_hold takes a SegmentRef, not {type(segment).__name__}")
        lost = self.pm.failed_with("retention_hold")
        if lost:  # a hold plugin disabled by a failure: its holds are unknown, not absent
            name, reason = lost[0].name, lost[0].reason
            error = f"plugin {name} implements retention_hold but was disabled: {reason}"
            return Selection(None, name, failed=True, error=error[:300])
        kwargs = {"hub": self, "segment": segment}
        return select(self.pm, "retention_hold", kwargs, self._selector_failures)

    def hold_reason(self, segment: SegmentRef) -> str | None:
        """The reason to keep ``segment``, or None to let it go; a failing plugin's
        reason says it failed (the segment is kept all the same)."""
        return self.hold_decision(segment).keep_reason("retention_hold")

    def layout_for(self, incident: IncidentRef, wall: WallRef) -> str | None:
        if not isinstance(incident, IncidentRef):
            raise TypeError(f"layout_for takes an IncidentRef, not {type(incident).__name__}")
        if not isinstance(wall, WallRef):
            raise TypeError(f"layout_for takes a WallRef, not {type(wall).__name__}")
        kwargs = {"hub": self, "incident": incident, "wall": wall}
        answer = select(self.pm, "layout_for_incident", kwargs, self._selector_failures).answer
        return cast(str | None, answer)

    def geocode(self, address: str, district: str | None = None) -> Location | None:
        """Ask ``geocode_location`` where ``address`` is: a ``Location`` with its
        point, or None when no plugin can tell (a failing plugin is passed over)."""
        if not isinstance(address, str):
            raise TypeError(f"geocode takes an address string, not {type(address).__name__}")
        if district is not None and not isinstance(district, str):
            raise TypeError(f"district must be a string or None, not {type(district).__name__}")
        if not address.strip() or not self.pm.hook.geocode_location.get_hookimpls():
            return None
        kwargs = {"hub": self, "address": address, "district": district}
        answer = select(self.pm, "geocode_location", kwargs, self._selector_failures).answer
        return cast(Location | None, answer)
