"""``csuhub retention status|sweep|register``: what is kept, for how long, and what
was destroyed; run on the data directory directly, like ``recordings``."""

from __future__ import annotations

import argparse
import csv
import io
import json

from csuhub.cli.common import (
    Output,
    add_hub_options,
    plural,
    run_retention,
    size,
    table,
)
from csuhub.hub import Hub
from csuhub.store.sweeps import DESTRUCTION_COLUMNS
from csuhub.timeutil import iso

#: alerts that mean a sweep's report is not the whole truth
INCOMPLETE_SWEEP_ALERTS = frozenset({"policy_failed", "hold_hook_failed", "sweep_failed"})
#: the register's CSV columns, fixed: an audit script reads the header even when
#: nothing has been destroyed yet (it was taken from the first row, so was missing)
REGISTER_CSV_COLUMNS = ("id", *DESTRUCTION_COLUMNS)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = sub.add_parser("retention", help="retention status, sweeps, destruction register")
    actions = retention.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="per camera: retention, oldest footage, holds")
    sweep = actions.add_parser("sweep", help="destroy expired footage now")
    sweep.add_argument("--dry-run", action="store_true", help="say what would go; destroy nothing")
    register = actions.add_parser("register", help="the destruction register")
    register.add_argument("--camera")
    register.add_argument("--csv", action="store_true", help="CSV for an audit")
    for p in (status, sweep, register):
        add_hub_options(p)


def cmd_retention(args: argparse.Namespace, out: Output) -> int:
    async def work(hub: Hub) -> int:
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
                    f"storage: {size(disk['free'])} free of {size(disk['total'])} "
                    f"({disk['free_percent']:.1f} %)"
                )
            cams = [
                (
                    cam["camera_id"],
                    f"{cam['retention'] / 86400:g} d",
                    iso(cam["oldest"], tz) if cam.get("oldest") else "no footage",
                    plural(cam.get("segments", 0), "segment"),
                    size(cam.get("bytes", 0)),
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
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(REGISTER_CSV_COLUMNS)
                writer.writerows([[r[c] for c in REGISTER_CSV_COLUMNS] for r in rows])
                out.verbatim(buffer.getvalue())
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
                            size(r["bytes"]),
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
                    size(w["bytes"]),
                    f"{iso(w['from'], tz)} -> {iso(w['to'], tz)}",
                )
                for w in report.would_destroy.values()
            ]
            text = (
                table(rows, ("CAMERA", "POLICY", "FOOTAGE", "SIZE", "RANGE"), right={2, 3})
                if rows
                else "nothing would be destroyed"
            )
            # the policies' holds were simulated, not written: say what they change
            for hold in report.simulated:
                verb = "keeps" if hold["action"] == "place" else "frees"
                text += (
                    f"\nsimulated: {hold['actor']} would {hold['action']} hold {hold['kind']} "
                    f"{hold['ref']} on {hold['camera_id']} ({hold['reason']}): {verb} "
                    f"{plural(hold['segments'], 'segment')}, {size(hold['bytes'])}"
                )
            out.document(data, text)
        else:
            out.document(
                data,
                f"destroyed {plural(report.segments, 'segment')}, {size(report.bytes)} in "
                f"{report.duration:.2f}s ({json.dumps(report.by_policy)})",
            )
        # a policy or hold plugin that failed makes the answer incomplete: say so, and
        # do not exit 0 as if the sweep (or its dry run) were the whole truth
        broken = [a for a in report.alerts if a["kind"] in INCOMPLETE_SWEEP_ALERTS]
        if not out.as_json:  # the JSON document carries them in "alerts"
            for alert in broken:
                out.error(f"{alert['kind']}: {alert['message']}", 1)
        return 1 if report.failed or broken else 0

    reads = args.retention_command != "sweep" or args.dry_run
    return run_retention(args, work, reads=reads)


HANDLERS = {"retention": cmd_retention}
