"""``csuhub walls list|show``: the walls' screens from the console, as stored.

They read the data directory (the state the running hub stored with each
change, which a restart restores), so they work beside a running hub or
without one. Changing a wall goes through the API (``POST
/api/walls/{wall}/screens/{screen}``, ``POST /api/walls/{wall}/push``), not
through here: the running hub holds the walls, fires the ``wall.changed``
the kiosks follow and audits the change; a console writing the store behind
its back would be overwritten by the hub's next change and seen by no kiosk.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from csuhub.cli.common import (
    EXIT_INVALID,
    CliError,
    Output,
    add_hub_options,
    hub_for,
    open_store,
    require_data,
    table,
)
from csuhub.hub import Hub
from csuhub.store.walls import WallStore
from csuhub.walls.model import ScreenState


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    walls = sub.add_parser("walls", help="video walls: their screens as stored (read only)")
    actions = walls.add_subparsers(dest="walls_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every wall: version, screens, pins, incidents")
    show = actions.add_parser("show", help="one wall's screens: layout, cameras, incident")
    show.add_argument("wall", help="the wall's id")
    for p in (listing, show):
        add_hub_options(p)


def _screens(stored: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for screen_id, row in stored.get("screens", {}).items():
        try:
            state = ScreenState.from_dict(row["state"])
        except (KeyError, TypeError, ValueError):
            out.append({"id": screen_id, "unreadable": True})
            continue
        data: dict[str, Any] = {
            "id": screen_id,
            "layout": state.shown.layout,
            "cameras": list(state.shown.cameras),
            "pushed": {str(k): v for k, v in sorted(state.shown.pushed.items())},
            "options": dict(state.shown.options),
            "pinned": state.pinned,
            "incident": state.incident,
        }
        if state.previous is not None:
            data["previous_layout"] = state.previous.layout
            data["closed"] = state.closed
            data["until"] = state.until
        out.append(data)
    return out


async def _walls(hub: Hub) -> list[dict[str, Any]]:
    async with open_store(hub) as store:
        stored = await WallStore(store).load()
    declared = {w.id: w for w in hub.config.settings.walls} if hub.configured else {}
    walls = []
    for wall_id in sorted(set(stored) | set(declared)):
        found = stored.get(wall_id, {})
        settings = declared.get(wall_id)
        walls.append(
            {
                "id": wall_id,
                "name": (settings.name if settings else None) or wall_id,
                "version": found.get("version", 0),
                "waiting": found.get("waiting", []),
                "stored": wall_id in stored,
                "screens": _screens(found),
            }
        )
    return walls


def _screen_line(screen: dict[str, Any]) -> list[Any]:
    if screen.get("unreadable"):
        return [screen["id"], "?", "", "", "(unreadable)"]
    cameras = ", ".join(screen["cameras"]) or "-"
    if screen["pushed"]:
        cameras += " + pushed " + ", ".join(f"{k}:{v}" for k, v in screen["pushed"].items())
    incident = "-" if screen["incident"] is None else f"#{screen['incident']}"
    return [screen["id"], screen["layout"], "yes" if screen["pinned"] else "", incident, cameras]


def cmd_walls(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    require_data(hub)
    walls = asyncio.run(_walls(hub))
    if args.walls_command == "list":
        rows = [
            [
                w["id"],
                w["version"],
                len(w["screens"]),
                sum(1 for s in w["screens"] if s.get("pinned")),
                ", ".join(f"#{s['incident']}" for s in w["screens"] if s.get("incident")) or "-",
            ]
            for w in walls
        ]
        human = table(rows, ["wall", "version", "screens", "pinned", "incidents"], right=[1, 2, 3])
        out.document({"walls": walls}, human or "no walls stored")
        return 0
    found = next((w for w in walls if w["id"] == args.wall), None)
    if found is None:
        raise CliError(f"no wall {args.wall!r} in this hub's data", EXIT_INVALID)
    head = f"wall {found['id']} ({found['name']}), version {found['version']}"
    if found["waiting"]:
        head += ", waiting incidents " + ", ".join(f"#{i}" for i in found["waiting"])
    if not found["stored"]:
        head += " (never started: as the site file declares it)"
    lines = [_screen_line(s) for s in found["screens"]]
    body = table(lines, ["screen", "layout", "pinned", "incident", "cameras"])
    out.document(found, head + ("\n" + body if body else ""))
    return 0


HANDLERS = {"walls": cmd_walls}
