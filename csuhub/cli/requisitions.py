"""``csuhub requisitions ...``: judicial requisitions, from the hold to the handover
and the outcome; run on the data directory directly, like ``retention``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from csuhub.cli.common import (
    EXIT_INVALID,
    TIME_FROM,
    TIME_TO,
    CliError,
    Output,
    add_hub_options,
    plural,
    run_retention,
    size,
    when,
)
from csuhub.hub import Hub
from csuhub.requisitions import RequisitionError
from csuhub.timeutil import iso

#: the actions that only read the register
READS = ("list", "show", "stats")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    req = sub.add_parser("requisitions", help="judicial requisitions: hold, export, close")
    ra = req.add_subparsers(dest="requisitions_command", required=True, metavar="ACTION")
    create = ra.add_parser("create", help="register a requisition and hold its footage at once")
    create.add_argument("--reference", required=True, help="procedure or PV number")
    create.add_argument("--service", required=True, help="requesting service")
    create.add_argument("--officer", required=True, help="requesting officer (OPJ)")
    create.add_argument(
        "--frame",
        required=True,
        choices=["flagrant_delit", "enquete_preliminaire", "information_judiciaire"],
        help="legal frame",
    )
    create.add_argument("--camera", action="append", required=True, dest="cameras")
    create.add_argument("--from", dest="start", required=True, metavar="T", help=TIME_FROM)
    create.add_argument("--to", dest="end", required=True, metavar="T", help=TIME_TO)
    create.add_argument("--reason", required=True)
    listing = ra.add_parser("list", help="the register of requisitions")
    listing.add_argument("--status")
    listing.add_argument("--csv", action="store_true", help="requisitions and extractions, CSV")
    show = ra.add_parser("show", help="one requisition, its scope and extractions")
    export = ra.add_parser("export", help="signed evidence packages and the handover receipt")
    export.add_argument("-o", "--output", type=Path, help="folder (default: the data dir's)")
    deliver = ra.add_parser("deliver", help="record the handover of the package")
    deliver.add_argument("--to", required=True, dest="recipient", help="who received it")
    close = ra.add_parser("close", help="close with the outcome; releases the hold")
    close.add_argument("--outcome", required=True, choices=["helped", "not_helped", "unknown"])
    stats = ra.add_parser("stats", help="aggregated figures for the ethics committee")
    for p in (show, export, deliver, close):
        p.add_argument("requisition", help="id or reference")
    for p in (create, export, deliver, close):
        p.add_argument("--user", default="cli", help="who acts (in the audit trail)")
    for p in (create, listing, show, export, deliver, close, stats):
        add_hub_options(p)


def _describe(req: dict[str, Any], tz: str) -> str:
    """A requisition for a person: its head line, then scope, gaps and extractions."""
    lines = [
        f"#{req['id']} {req['reference']} [{req['status']}"
        + (f", {req['outcome']}" if req.get("outcome") else "")
        + f"] {req['legal_frame']} — {req['service']}, {req['officer']}",
        f"  {iso(req['start'], tz)} -> {iso(req['end'], tz)} on {', '.join(req['cameras'])}",
        f"  reason: {req['reason']}",
    ]
    for camera_id, entry in (req.get("scope") or {}).items():
        lines.append(
            f"  {camera_id}: {entry['percent']:.1f} % available, "
            f"{plural(entry.get('held_segments', 0), 'segment')} held"
        )
        for piece in entry["missing"]:
            detail = piece.get("policy") or piece.get("reason") or ""
            lines.append(
                f"    missing {iso(piece['from'], tz)} -> {iso(piece['to'], tz)}: "
                f"{piece['why']} ({detail})"
            )
    for ext in req.get("extractions", []):
        lines.append(f"  extraction {ext['file']} sha256 {ext['sha256'][:16]}...")
    return "\n".join(lines)


def cmd_requisitions(args: argparse.Namespace, out: Output) -> int:
    async def work(hub: Hub) -> int:
        tz = hub.config.hub["timezone"]
        service = hub.requisitions
        command = args.requisitions_command
        try:
            if command == "create":
                start = when(hub, args.start, 0)
                end = when(hub, args.end, 0)
                req = await service.create(
                    {
                        "reference": args.reference,
                        "service": args.service,
                        "officer": args.officer,
                        "legal_frame": args.frame,
                        "cameras": args.cameras,
                        "start": start,
                        "end": end,
                        "reason": args.reason,
                    },
                    args.user,
                )
                out.document(req, _describe(req, tz))
                return 0
            if command == "list":
                if args.csv:
                    out.verbatim(await service.register_csv())
                    return 0
                reqs = await hub.store.requisitions.list(args.status)
                out.document(
                    {"requisitions": reqs},
                    "\n".join(_describe(r, tz).splitlines()[0] for r in reqs) or "no requisitions",
                )
                return 0
            if command == "stats":
                stats = await hub.store.requisitions.stats()
                total = stats["total"]
                rate = total["helped_rate"]
                lines = [
                    f"{plural(total['requisitions'], 'requisition')}, {total['open']} open, "
                    f"{total['closed']} closed; helped: {total['outcomes']['helped']}"
                    + (f" ({rate * 100:.0f} % of closed)" if rate is not None else ""),
                    f"held now: {plural(stats['held']['segments'], 'segment')}, "
                    f"{size(stats['held']['bytes'])}, {stats['held']['seconds'] / 3600:.1f} h",
                ]
                for month, m in stats["months"].items():
                    lines.append(
                        f"  {month}: {plural(m['requisitions'], 'requisition')}, "
                        f"{plural(m['exports'], 'export')}, outcomes {m['outcomes']}"
                    )
                out.document(stats, "\n".join(lines))
                return 0
            req = await service.resolve(args.requisition)
            if command == "show":
                out.document(req, _describe(req, tz))
                return 0
            if command == "export":
                folder = args.output.resolve() if args.output else None
                result = await service.export(req["id"], args.user, folder, out.progress)
                lines = [f"{result['folder']}:"]
                lines += [
                    f"  {f['file']}  {f['seconds']:.1f}s  sha256 {f['sha256']}"
                    for f in result["files"]
                ]
                lines += [f"  {c}: not exported ({why})" for c, why in result["skipped"].items()]
                lines.append(f"  receipt: {result['receipt']} (print it for the handover)")
                out.emit("\n".join(lines), event="exported", **result)
                return 0
            if command == "deliver":
                req = await service.deliver(req["id"], args.user, args.recipient)
            else:
                req = await service.close(req["id"], args.user, args.outcome)
            out.document(req, _describe(req, tz))
            return 0
        except RequisitionError as err:
            raise CliError(str(err), EXIT_INVALID) from None

    return run_retention(args, work, reads=args.requisitions_command in READS)


HANDLERS = {"requisitions": cmd_requisitions}
