"""The call lines' lifecycle: built from ``call_lines:``, started after the
cameras, stopped before them.

For each enabled entry the spec of its ``type`` is looked up
(``register_call_lines``), its options validated with the spec's schema,
``spec.factory(hub, line_id, options)`` builds the line and ``start()`` starts
it. A line that cannot be built or started is a ``ComponentFailed`` and the hub
runs on without it (the police desk still has its phone); the others start.
The running lines are ``hub.call_lines`` (the webhook route finds its line
there). Stopping takes a line out of the mapping first, so no request reaches
a line being stopped.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

from csuhub.events import ComponentFailed, ComponentStarted
from csuhub.protocols import CallLine

_LOGGER = logging.getLogger(__name__)

KIND = "call_line"


async def start_lines(hub: Any, lines: dict[str, CallLine], stack: AsyncExitStack) -> None:
    """Start every enabled line of the site into ``lines``; each one's stop is
    pushed on ``stack`` (unwound in reverse, before the cameras stop)."""
    for entry in hub.config.settings.call_lines:
        if not entry.enabled:
            continue
        line = await _start_line(hub, entry)
        if line is None:
            continue
        lines[entry.id] = line
        stack.push_async_callback(_stop_line, lines, entry.id, line)


async def _start_line(hub: Any, entry: Any) -> CallLine | None:
    registry = hub.registry.call_lines
    spec = registry.get(entry.type)
    plugin = registry.plugin_of(entry.type) or "?"
    if spec is None:
        _failed(hub, entry.id, plugin, f"no call line type {entry.type!r} (see `csuhub plugins`)")
        return None
    try:
        options = spec.config_schema(dict(entry.options or {}))
        line = spec.factory(hub, entry.id, options)
        if not isinstance(line, CallLine):
            raise TypeError(f"factory returned {type(line).__name__}, not a CallLine")
        await line.start()
    except Exception as err:
        _LOGGER.exception("call line %s (%s) failed to start", entry.id, entry.type)
        _failed(hub, entry.id, plugin, f"{type(err).__name__}: {err}")
        return None
    hub.bus.fire(ComponentStarted(kind=KIND, component=entry.id, plugin=plugin))
    return line


async def _stop_line(lines: dict[str, CallLine], line_id: str, line: CallLine) -> None:
    if lines.get(line_id) is line:
        del lines[line_id]
    try:
        await line.stop()
    except Exception:
        _LOGGER.exception("call line %s failed to stop", line_id)


def _failed(hub: Any, line_id: str, plugin: str, reason: str) -> None:
    hub.bus.fire(ComponentFailed(kind=KIND, component=line_id, plugin=plugin, reason=reason))
