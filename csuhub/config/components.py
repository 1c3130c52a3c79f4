"""Where the site file names a plugin's component and hands it options.

Every plugin component (camera driver, discovery source, recording backend,
retention policy, call line type, wall layout) is named by a key of some
entry in the site file and configured by that entry's ``options``; its spec
carries a ``config_schema``. This table says where those entries are, so
``csuhub check`` and ``reload`` validate every options block against its
plugin's schema in one loop: a typo is reported as ``file:line:col`` before
anything starts, not as an offline camera or a policy that silently did not
run. A new kind of component gets the same check by adding one row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from csuhub.walls.model import layout_entry_options

Path = tuple[Any, ...]


def _listed(section: str) -> Callable[[dict[str, Any]], Iterator[tuple[Path, dict[str, Any]]]]:
    def items(data: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
        for index, entry in enumerate(data.get(section) or []):
            if entry is not None:  # None: an entry that failed the core schema
                yield (section, index), entry

    return items


def _recording(data: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    if data.get("recording") is not None:
        yield ("recording",), data["recording"]


def _policies(data: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for index, entry in enumerate((data.get("retention") or {}).get("policies") or []):
        yield ("retention", "policies", index), entry


def _screens(data: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for w, wall in enumerate(data.get("walls") or []):
        if wall is None:  # failed the core schema
            continue
        for s, screen in enumerate(wall.get("screens") or []):
            yield ("walls", w, "screens", s), screen


def plain_options(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(entry.get("options") or {})


def camera_driver_options(camera: dict[str, Any]) -> dict[str, Any]:
    """What a configured camera's driver receives: its options, plus its
    ``credentials`` as ``username``/``password`` unless the options give them
    (the camera registry calls this too, so what is checked is what runs)."""
    options = plain_options(camera)
    credentials = camera.get("credentials")
    if credentials:
        options.setdefault("username", credentials["username"])
        options.setdefault("password", credentials.get("password", ""))
    return options


@dataclass(frozen=True)
class ComponentRef:
    """One place in the site file that names a component and gives its options."""

    #: the attribute of ``Registry`` holding the specs (``camera_drivers``)
    registry: str
    #: for messages: "camera driver"
    what: str
    #: the top-level section, which must have validated for the check to run
    section: str
    #: ``(path, entry)`` for each entry naming a component, from validated data
    entries: Callable[[dict[str, Any]], Iterator[tuple[Path, dict[str, Any]]]]
    #: the entry's key that names the component
    name_key: str
    #: the options as the component's factory receives them
    options: Callable[[dict[str, Any]], dict[str, Any]] = plain_options
    #: a component no loaded plugin provides is an error, not a warning: a missing
    #: retention policy would keep footage longer than the site says
    required: bool = False


COMPONENT_REFERENCES: tuple[ComponentRef, ...] = (
    ComponentRef(
        "camera_drivers",
        "camera driver",
        "cameras",
        _listed("cameras"),
        "driver",
        camera_driver_options,
    ),
    ComponentRef(
        "discovery_sources", "discovery source", "discovery", _listed("discovery"), "source"
    ),
    ComponentRef("recording_backends", "recording backend", "recording", _recording, "backend"),
    ComponentRef(
        "retention_policies",
        "retention policy",
        "retention",
        _policies,
        "policy",
        required=True,
    ),
    ComponentRef("call_lines", "call line type", "call_lines", _listed("call_lines"), "type"),
    # the wall rules' keys (spotlight, hold, timeout, radius_m) are the manager's,
    # not the layout's: checked as the layout's factory will receive its options
    ComponentRef(
        "wall_layouts", "wall layout", "walls", _screens, "layout", options=layout_entry_options
    ),
)
