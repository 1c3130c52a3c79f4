"""``csuhub incidents list|show|open|note|close``: incidents from the console.

They work on the data directory directly, beside a running hub, as
``requisitions`` does: an incident, its cameras, its holds and its audit
entries are one SQLite transaction, whichever process writes it. An incident
opened here links the nearest cameras the register says are online. The
running hub fires no bus event for what this process changed (its wall
learns of it at its next read). Acting commands act as ``--user`` (default
``cli``). Caller numbers are masked unless ``--show-callers``: the console is
in the same room as the wall.
"""

from __future__ import annotations

import argparse
from typing import Any

from csuhub.cli.common import (
    EXIT_INVALID,
    TIME_FROM,
    TIME_TO,
    CliError,
    Output,
    add_hub_options,
    run_retention,
    table,
)
from csuhub.hub import Hub
from csuhub.incidents import parse
from csuhub.incidents.model import Incident, IncidentError
from csuhub.security.context import acting
from csuhub.timeutil import iso

READS = ("list", "show")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inc = sub.add_parser("incidents", help="incidents: list, show, open, annotate, close")
    ia = inc.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    listing = ia.add_parser("list", help="incidents, newest first")
    listing.add_argument("--status", choices=["open", "closed"])
    listing.add_argument("--from", dest="start", metavar="T", help=TIME_FROM)
    listing.add_argument("--to", dest="end", metavar="T", help=TIME_TO)
    listing.add_argument("--camera", help="only incidents linked to this camera")
    listing.add_argument("--limit", default="200", help=f"at most this many (1-{parse.MAX_LIST})")
    show = ia.add_parser("show", help="one incident: cameras, bookmarks, notes, outcome")
    note = ia.add_parser("note", help="add a note to an open incident")
    close = ia.add_parser("close", help="close with the outcome; releases the footage holds")
    for p in (show, note, close):
        p.add_argument("incident", type=int, help="the incident's id")
    note.add_argument("text")
    close.add_argument("--outcome", required=True)
    opening = ia.add_parser("open", help="open an incident by hand (nearest cameras linked)")
    opening.add_argument("--category", required=True, help="e.g. fight, theft, traffic")
    opening.add_argument("--priority", default="normal", choices=list(parse.PRIORITIES))
    opening.add_argument("--lat", type=float, help="WGS84 latitude of the incident")
    opening.add_argument("--lon", type=float, help="WGS84 longitude")
    opening.add_argument("--radius", type=float, help="uncertainty around the point, metres")
    opening.add_argument("--address")
    opening.add_argument("--district", help="link the district's cameras when no point")
    opening.add_argument("--text", default="", help="what happened")
    opening.add_argument("--caller", help="the caller's number, if any")
    for p in (opening, note, close):
        p.add_argument("--user", default="cli", help="who acts (in the audit trail)")
    for p in (listing, show, opening, note, close):
        p.add_argument("--show-callers", action="store_true", help="caller numbers unmasked")
        add_hub_options(p)


def _line(data: dict[str, Any], tz: str) -> list[Any]:
    cameras = ", ".join(c["id"] for c in data["cameras"]) or "-"
    source = data["source"]["line"] or data["source"]["kind"]
    return [
        data["id"],
        data["status"],
        iso(data["opened_at"], tz),
        data["priority"],
        data["category"],
        source,
        data["caller"],
        cameras,
    ]


def _describe(data: dict[str, Any], tz: str) -> str:
    where = data["location"] or {}
    place = ", ".join(
        str(part)
        for part in (
            where.get("address"),
            f"{where['lat']:.6f} {where['lon']:.6f}" if where.get("lat") is not None else None,
            f"±{where['radius_m']:.0f} m" if where.get("radius_m") is not None else None,
            data["district"],
        )
        if part
    )
    source = data["source"]
    lines = [
        f"#{data['id']} [{data['status']}"
        + (f", {data['outcome']}" if data["outcome"] else "")
        + f"] {data['category']} ({data['priority']})",
        f"  opened {iso(data['opened_at'], tz)} by {data['opened_by'] or '-'}"
        + (f", closed {iso(data['closed_at'], tz)}" if data["closed_at"] else ""),
        f"  source: {source['kind']}"
        + (f" {source['line']} call {source['call_id']}" if source["line"] else "")
        + (f", {data['call_state']}" if data["call_state"] else ""),
        f"  caller: {data['caller'] or 'withheld'}",
        f"  where: {place or 'unknown'}",
    ]
    if data["text"]:
        lines.append(f"  text: {data['text']}")
    for cam in data["cameras"]:
        distance = f"{cam['distance_m']:.0f} m" if cam["distance_m"] is not None else "-"
        lines.append(f"  camera {cam['id']}: {distance} ({cam['reason']})")
    for mark in data["bookmarks"]:
        lines.append(
            f"  bookmark {mark['camera']} at {iso(mark['time'], tz)}: {mark['note']} ({mark['by']})"
        )
    for note in data["notes"]:
        lines.append(f"  note {iso(note['at'], tz)} {note['by']}: {note['text']}")
    return "\n".join(lines)


def cmd_incidents(args: argparse.Namespace, out: Output) -> int:
    async def work(hub: Hub) -> int:
        tz = hub.config.hub["timezone"]
        desk = hub.incidents
        command = args.incidents_command

        def shown(incident: Incident) -> dict[str, Any]:
            return incident.as_dict(caller_visible=args.show_callers)

        try:
            if command == "list":
                query = parse.parse_query(
                    {
                        k: v
                        for k, v in {
                            "status": args.status,
                            "from": args.start,
                            "to": args.end,
                            "camera": args.camera,
                            "limit": args.limit,
                        }.items()
                        if v is not None
                    },
                    tz,
                )
                found = await desk.list(
                    status=query.status,
                    start=query.start,
                    end=query.end,
                    camera=query.camera,
                    limit=query.limit,
                )
                rows = [shown(i) for i in found]
                header = ["id", "status", "opened", "priority", "category", "source", "caller"]
                human = table([_line(r, tz) for r in rows], [*header, "cameras"], right=[0])
                out.document({"incidents": rows}, human or "no incidents")
                return 0
            if command == "show":
                found_one = await desk.get(args.incident)
                if found_one is None:
                    raise IncidentError(f"no incident {args.incident}", "not_found")
                incident = found_one
            elif command == "open":
                wanted = parse.parse_open(_open_body(args))
                incident = await desk.open(
                    acting(args.user),
                    category=wanted.category,
                    priority=wanted.priority,
                    location=wanted.location,
                    district=wanted.district,
                    text=wanted.text,
                    caller=wanted.caller,
                )
            elif command == "note":
                text = parse.parse_note({"text": args.text})
                incident = await desk.note(args.incident, text, acting(args.user))
            else:
                outcome = parse.parse_close({"outcome": args.outcome})
                incident = await desk.close(args.incident, outcome, acting(args.user))
        except IncidentError as err:
            raise CliError(str(err), EXIT_INVALID) from None
        data = shown(incident)
        out.document(data, _describe(data, tz))
        return 0

    return run_retention(args, work, reads=args.incidents_command in READS)


def _open_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"category": args.category, "priority": args.priority}
    location = {
        k: v
        for k, v in {
            "lat": args.lat,
            "lon": args.lon,
            "radius_m": args.radius,
            "address": args.address,
        }.items()
        if v is not None
    }
    if location:
        body["location"] = location
    for name in ("district", "text", "caller"):
        if getattr(args, name):
            body[name] = getattr(args, name)
    return body


HANDLERS = {"incidents": cmd_incidents}
