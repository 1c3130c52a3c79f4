"""A screen's state: what it shows now, what it goes back to, and how it follows
incidents; as plain data so the store keeps it as JSON and a restart restores it.

Why the rule options sit beside the layout's own: the site file has one
``options`` block per screen, and the keys that concern the spotlight rules
(``spotlight``, ``hold``, ``timeout``, ``radius_m``, ``min_priority``,
``categories``) are the hub's, not the layout's. They
are split off here before the layout's ``config_schema`` sees the block, so a
third-party layout need not know them (``layout_options``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from csuhub.config.validators import duration
from csuhub.refs import IncidentRef, Priority

#: layouts whose screens follow incidents by themselves; ``incident_spotlight`` is
#: the name blueprints used before the bundled ``spotlight`` layout, kept as an alias
SPOTLIGHT_LAYOUTS = ("spotlight", "incident_spotlight")
ALIASES = {"incident_spotlight": "spotlight"}
#: keys of a screen's ``options`` that the spotlight rules read (never passed to the layout)
RULE_KEYS = ("spotlight", "hold", "timeout", "radius_m", "min_priority", "categories")
#: most categories a screen's rule names
MAX_CATEGORIES = 32
#: most cameras a screen is given (a 1+12 has 13 tiles; a carousel may cycle more)
MAX_CAMERAS = 64
#: longest ``hold`` or ``timeout``
MAX_RULE_SECONDS = 86400.0


@dataclass(frozen=True, slots=True)
class Rules:
    """How a screen follows incidents."""

    #: an incident may take the screen
    spotlight: bool = False
    #: seconds the incident stays on the screen after it closes
    hold: float = 0.0
    #: seconds an incident keeps the screen at most, open or not (0: until it closes)
    timeout: float = 0.0
    #: only the incident's cameras within this distance (those linked without a
    #: distance, by district or by an operator, are kept); None: all of them
    radius_m: float | None = None
    #: incidents of a lower priority never take the screen
    min_priority: Priority = Priority.LOW
    #: only incidents of these categories take the screen (compared without
    #: case); None: any category
    categories: frozenset[str] | None = None

    def accepts(self, incident: IncidentRef) -> bool:
        """May ``incident`` take this screen (its priority and category)?"""
        if incident.priority < self.min_priority:
            return False
        return self.categories is None or incident.category.casefold() in self.categories

    def cameras_of(self, incident: IncidentRef) -> IncidentRef:
        """The incident as this screen shows it: its cameras within ``radius_m``."""
        if self.radius_m is None:
            return incident
        radius = self.radius_m
        kept = tuple(c for c in incident.cameras if c.distance_m is None or c.distance_m <= radius)
        return incident if kept == incident.cameras else replace(incident, cameras=kept)


def _seconds(value: Any, key: str) -> float:
    """A duration as the site file writes it (``90s``, ``2m``, a number)."""
    try:
        seconds = duration(value)
    except Exception as err:  # vol.Invalid: say which option
        raise ValueError(f"options.{key}: {err}") from None
    if seconds > MAX_RULE_SECONDS:
        raise ValueError(f"options.{key}: at most 24 hours")
    return seconds


def _priority(value: Any) -> Priority:
    names = [str(p) for p in Priority]
    if not isinstance(value, str) or value.lower() not in names:
        raise ValueError(f"options.min_priority: one of {', '.join(names)}")
    return Priority[value.upper()]


def _categories(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_CATEGORIES
        or not all(isinstance(c, str) and 0 < len(c.strip()) <= 64 for c in value)
    ):
        raise ValueError(
            f"options.categories: a list of 1 to {MAX_CATEGORIES} category names (64 characters)"
        )
    return frozenset(c.strip().casefold() for c in value)


def rule_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The rules' keys of a screen's options (kept when its layout changes)."""
    return {k: v for k, v in options.items() if k in RULE_KEYS}


def rules_of(layout: str, options: Mapping[str, Any]) -> Rules:
    """The rules a screen's layout and options say; ``ValueError`` on a bad value."""
    flag = options.get("spotlight", False)
    if not isinstance(flag, bool):
        raise ValueError("options.spotlight: true or false")
    radius = options.get("radius_m")
    if radius is not None and (
        isinstance(radius, bool)
        or not isinstance(radius, int | float)
        or not (math.isfinite(radius) and radius > 0)
    ):
        raise ValueError("options.radius_m: a distance in metres, above 0")
    return Rules(
        min_priority=_priority(options.get("min_priority", "low")),
        categories=_categories(options.get("categories")),
        spotlight=flag or layout in SPOTLIGHT_LAYOUTS,
        radius_m=None if radius is None else float(radius),
        hold=_seconds(options.get("hold", 0), "hold"),
        timeout=_seconds(options.get("timeout", 0), "timeout"),
    )


def layout_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """What the layout's ``config_schema`` validates: the options without the rules'."""
    return {k: v for k, v in options.items() if k not in RULE_KEYS}


def layout_entry_options(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A site file's screen entry as its layout's factory receives it (for the
    configuration check of ``csuhub check``, ``config/components.py``)."""
    return layout_options(entry.get("options") or {})


@dataclass(frozen=True, slots=True)
class Base:
    """What an operator or the site file gave a screen: what it goes back to."""

    layout: str
    cameras: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    #: tile index -> camera pushed onto it
    pushed: Mapping[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "cameras": list(self.cameras),
            "options": dict(self.options),
            "pushed": {str(k): v for k, v in sorted(self.pushed.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Base:
        return cls(
            layout=str(data["layout"]),
            cameras=tuple(str(c) for c in data.get("cameras") or ()),
            options=dict(data.get("options") or {}),
            pushed={int(k): str(v) for k, v in (data.get("pushed") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class ScreenState:
    """A screen now. While an incident holds it, ``shown`` is the incident's
    layout and cameras and ``previous`` what was there before (restored exactly
    on revert); otherwise ``previous`` is None."""

    shown: Base
    pinned: bool = False
    #: the incident the screen spotlights
    incident: int | None = None
    previous: Base | None = None
    #: the incident has closed and is held on screen (``hold``)
    closed: bool = False
    #: when the screen lets the incident go (hold or timeout), epoch seconds
    until: float | None = None

    def __post_init__(self) -> None:
        if (self.incident is None) != (self.previous is None):
            raise ValueError("an incident and the state before it go together")
        if self.until is not None and not math.isfinite(self.until):
            raise ValueError("until must be finite")

    @property
    def base(self) -> Base:
        """What the screen shows when no incident holds it."""
        return self.previous if self.previous is not None else self.shown

    @property
    def rules(self) -> Rules:
        try:
            return rules_of(self.base.layout, self.base.options)
        except ValueError:
            return Rules(spotlight=self.base.layout in SPOTLIGHT_LAYOUTS)

    def reverted(self) -> ScreenState:
        return ScreenState(shown=self.base, pinned=self.pinned)

    def with_pinned(self, pinned: bool) -> ScreenState:
        return replace(self, pinned=pinned)

    def as_dict(self) -> dict[str, Any]:
        return {
            "shown": self.shown.as_dict(),
            "pinned": self.pinned,
            "incident": self.incident,
            "previous": None if self.previous is None else self.previous.as_dict(),
            "closed": self.closed,
            "until": self.until,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScreenState:
        previous = data.get("previous")
        incident = data.get("incident")
        until = data.get("until")
        return cls(
            shown=Base.from_dict(data["shown"]),
            pinned=bool(data.get("pinned", False)),
            incident=None if incident is None else int(incident),
            previous=None if previous is None else Base.from_dict(previous),
            closed=bool(data.get("closed", False)),
            until=None if until is None else float(until),
        )


def declared(layout: str, cameras: tuple[str, ...], options: Mapping[str, Any]) -> str:
    """A fingerprint of a screen's definition in the site file: when it changes,
    the stored state of that screen no longer applies (the site file wins)."""
    text = json.dumps(
        {"layout": layout, "cameras": list(cameras), "options": options},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
