"""Camera selectors on a screen: ``group:<name>`` and ``district:<name>`` in a
screen's cameras stand for the site's cameras of that group or district.

Why the manager resolves them and not the layout: layouts are pure functions
of the ids they are given (csuhub.walls.tiles), and a group changes as
cameras are declared or adopted. The manager reads where every camera is
(the site file's groups and district, else the register's district for an
adopted camera) when the walls start and at each reload, and expands each
selector, at every layout computation, to those cameras sorted by id; a
selector that matches nothing adds nothing. Names compare without case, as
camera scopes do (``district:centre`` is the site file's ``Centre``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_LOGGER = logging.getLogger(__name__)

GROUP, DISTRICT = "group:", "district:"
#: most cameras one screen's list expands to (a carousel may cycle many)
MAX_EXPANDED = 256


@dataclass(frozen=True, slots=True)
class Placement:
    district: str | None
    groups: tuple[str, ...] = ()


def is_selector(ref: str) -> bool:
    return ref.startswith((GROUP, DISTRICT))


async def placements(hub: Any) -> dict[str, Placement]:
    """Where each camera of the site is: the site file's cameras, and the running
    (adopted) ones the register places in a district."""
    found: dict[str, Placement] = {}
    for camera in hub.config.settings.cameras:
        district = camera.location.district if camera.location is not None else None
        found[camera.id] = Placement(district, tuple(camera.groups))
    entries = getattr(getattr(hub, "cameras", None), "entries", None) or {}
    for camera_id, entry in entries.items():
        if camera_id in found or not getattr(entry, "enabled", True):
            continue
        try:
            row = await hub.store.get_camera(camera_id)
        except Exception:  # a register that cannot answer: the camera is in no district
            _LOGGER.exception("walls: could not read camera %s's district", camera_id)
            row = None
        district = (getattr(row, "location", None) or {}).get("district") if row else None
        found[camera_id] = Placement(str(district) if district else None)
    return found


def members(selector: str, where: Mapping[str, Placement]) -> list[str]:
    """The cameras of one selector, sorted by id."""
    if selector.startswith(GROUP):
        name = selector[len(GROUP) :].casefold()
        return sorted(c for c, p in where.items() if name in (g.casefold() for g in p.groups))
    name = selector[len(DISTRICT) :].strip().casefold()
    return sorted(c for c, p in where.items() if p.district and p.district.casefold() == name)


def expand(refs: Iterable[str], where: Mapping[str, Placement]) -> tuple[str, ...]:
    """``refs`` with each selector replaced by its cameras; each camera once,
    at its first place; at most ``MAX_EXPANDED``."""
    out: dict[str, None] = {}
    for ref in refs:
        for camera in members(ref, where) if is_selector(ref) else [ref]:
            out.setdefault(camera, None)
    return tuple(out)[:MAX_EXPANDED]
