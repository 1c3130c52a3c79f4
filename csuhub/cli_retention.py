"""``csuhub retention status|sweep|register`` and ``csuhub requisitions ...``.

Both work on the data directory directly, like ``recordings``: safe beside a
running hub, because holds and sweeps are serialised by SQLite transactions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from csuhub.cli_recordings import TIME_FROM, TIME_TO
from csuhub.recording.timeutil import TimeError, parse_time


def add_retention_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    retention = sub.add_parser("retention", help="retention status, sweeps, destruction register")
    actions = retention.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="per camera: retention, oldest footage, holds")
    sweep = actions.add_parser("sweep", help="destroy expired footage now")
    sweep.add_argument("--dry-run", action="store_true", help="say what would go; destroy nothing")
    register = actions.add_parser("register", help="the destruction register")
    register.add_argument("--camera")
    register.add_argument("--csv", action="store_true", help="CSV for an audit")
    parsers = [status, sweep, register]

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
    parsers += [create, listing, show, export, deliver, close, stats]
    for p in parsers:
        p.add_argument("-c", "--config", type=Path, help="site file")
        p.add_argument("--data", type=Path, help="data directory")
        common(p)


def _run(args: argparse.Namespace, work: Callable[[Any], Awaitable[int]]) -> int:
    from csuhub.cli import require_data
    from csuhub.cli_cameras import _hub

    hub = _hub(args)
    action = getattr(args, "retention_command", None) or getattr(args, "requisitions_command", "")
    reads = action in ("status", "register", "list", "show", "stats") or (
        action == "sweep" and args.dry_run
    )
    require_data(hub, writes=not reads)  # never a new database in a mistyped directory

    async def run() -> int:
        await hub.store.open()
        try:
            hub.retention.configure()
            return await work(hub)
        finally:
            await hub.store.close()

    return asyncio.run(run())


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def cmd_retention(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import plural, table
    from csuhub.recording.timeutil import iso

    async def work(hub: Any) -> int:
        tz = hub.config.hub["timezone"]
        if args.retention_command == "status":
            status = await hub.retention.status()
            disk = status["disk"]
            lines = [
                f"legal maximum {status['legal_cap'] / 86400:g} days ({status['law']}); "
                f"default retention {status['default_retention'] / 86400:g} days; "
                f"policies: {', '.join(status['policies']) or 'none'}",
            ]
            if disk["total"]:
                lines.append(
                    f"storage: {_size(disk['free'])} free of {_size(disk['total'])} "
                    f"({disk['free_percent']:.1f} %)"
                )
            cams = [
                (
                    cam["camera_id"],
                    f"{cam['retention'] / 86400:g} d",
                    iso(cam["oldest"], tz) if cam.get("oldest") else "no footage",
                    plural(cam.get("segments", 0), "segment"),
                    _size(cam.get("bytes", 0)),
                    f"{cam.get('legal_hold', {}).get('segments', 0)} legal, "
                    f"{cam.get('preserved', {}).get('segments', 0)} preserved",
                )
                for cam in status["cameras"]
            ]
            if cams:
                header = ("CAMERA", "KEEP", "OLDEST", "FOOTAGE", "SIZE", "HELD")
                lines += ["  " + line for line in table(cams, header, right={3, 4}).splitlines()]
            for hold in status["holds"]:
                lines.append(
                    f"  hold {hold['kind']} {hold['ref']} on {hold['camera_id']} "
                    f"({hold['level']}): {hold['reason']}"
                )
            out.document(status, "\n".join(lines))
            return 0
        if args.retention_command == "register":
            rows = await hub.store.retention.destructions(args.camera)
            if args.csv:
                import csv
                import io

                buffer = io.StringIO()
                writer = csv.writer(buffer)
                if rows:
                    writer.writerow(rows[0].keys())
                    writer.writerows([r.values() for r in rows])
                sys.stdout.write(buffer.getvalue())
                return 0
            lines = (
                table(
                    [
                        (
                            r["id"],
                            r["camera_id"],
                            r["day"],
                            r["policy"],
                            plural(r["segments"], "segment"),
                            _size(r["bytes"]),
                            iso(r["last_destroyed_at"], tz),
                        )
                        for r in rows
                    ],
                    ("ENTRY", "CAMERA", "DAY", "POLICY", "FOOTAGE", "SIZE", "DESTROYED"),
                    right={0, 4, 5},
                ).splitlines()
                if rows
                else ["nothing destroyed yet"]
            )
            kept = await hub.store.retention.kept(args.camera)
            if kept:
                lines.append("kept past expiry by a retention_hold plugin:")
                lines += [
                    f"  sweep {k['sweep_id']} {k['camera_id']} {plural(k['segments'], 'segment')} "
                    f"{iso(k['footage_start'], tz)} -> {iso(k['footage_end'], tz)}"
                    f"{'  FAILURE' if k['failure'] else ''}: {k['reason']}"
                    for k in kept
                ]
            out.document({"destructions": rows, "kept": kept}, "\n".join(lines))
            return 0
        report = await hub.retention.sweep(
            dry_run=args.dry_run, origin="cli", progress=None if args.dry_run else out.progress
        )
        data = report.as_dict()
        if args.dry_run:
            rows = [
                (
                    w["camera_id"],
                    w["policy"],
                    plural(w["segments"], "segment"),
                    _size(w["bytes"]),
                    f"{iso(w['from'], tz)} -> {iso(w['to'], tz)}",
                )
                for w in report.would_destroy.values()
            ]
            out.document(
                data,
                table(rows, ("CAMERA", "POLICY", "FOOTAGE", "SIZE", "RANGE"), right={2, 3})
                if rows
                else "nothing would be destroyed",
            )
        else:
            out.document(
                data,
                f"destroyed {plural(report.segments, 'segment')}, {_size(report.bytes)} in "
                f"{report.duration:.2f}s ({json.dumps(report.by_policy)})",
            )
        # a policy or hold plugin that failed makes the answer incomplete: say so, and
        # do not exit 0 as if the sweep (or its dry run) were the whole truth
        broken = [a for a in report.alerts if a["kind"] in INCOMPLETE_SWEEP_ALERTS]
        if not out.as_json:  # the JSON document carries them in "alerts"
            for alert in broken:
                out.error(f"{alert['kind']}: {alert['message']}", 1)
        return 1 if report.failed or broken else 0

    return _run(args, work)


#: alerts that mean a sweep's report is not the whole truth
INCOMPLETE_SWEEP_ALERTS = frozenset({"policy_failed", "hold_hook_failed", "sweep_failed"})


def cmd_requisitions(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, EXIT_USAGE, CliError, plural
    from csuhub.recording.timeutil import iso
    from csuhub.retention.requisitions import RequisitionError

    def describe(req: dict[str, Any], tz: str) -> str:
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

    async def work(hub: Any) -> int:
        tz = hub.config.hub["timezone"]
        service = hub.requisitions
        command = args.requisitions_command
        try:
            if command == "create":
                try:
                    start = parse_time(args.start, tz)
                    end = parse_time(args.end, tz)
                except TimeError as err:
                    raise CliError(str(err), EXIT_USAGE) from None
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
                out.document(req, describe(req, tz))
                return 0
            if command == "list":
                if args.csv:
                    sys.stdout.write(await service.register_csv())
                    return 0
                reqs = await hub.store.requisitions.list(args.status)
                out.document(
                    {"requisitions": reqs},
                    "\n".join(describe(r, tz).splitlines()[0] for r in reqs) or "no requisitions",
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
                    f"{_size(stats['held']['bytes'])}, {stats['held']['seconds'] / 3600:.1f} h",
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
                out.document(req, describe(req, tz))
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
            out.document(req, describe(req, tz))
            return 0
        except RequisitionError as err:
            raise CliError(str(err), EXIT_INVALID) from None

    return _run(args, work)
