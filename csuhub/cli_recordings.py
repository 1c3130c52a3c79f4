"""``csuhub recordings``, ``csuhub export``, ``csuhub verify``, ``csuhub keys``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from csuhub.recording.timeutil import TimeError, iso, parse_time

#: Help for every --from/--to: the forms ``parse_time`` accepts.
TIME_FROM = (
    "start: ISO 8601 (2026-11-25T14:00, in the hub's time zone unless an offset is given) "
    "or epoch seconds"
)
TIME_TO = "end, in the same forms as --from; must be after it"


def add_recording_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    recordings = sub.add_parser("recordings", help="segments, gaps and continuity reports")
    actions = recordings.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="segments of a camera in a range")
    gaps = actions.add_parser("gaps", help="what was not recorded in a range, and why")
    report = actions.add_parser("report", help="daily continuity: percentage and gaps")
    report.add_argument("--day", help="YYYY-MM-DD (default: yesterday)")
    for p in (listing, gaps, report):
        p.add_argument("camera_id", help="camera id (see csuhub cameras list)")
    for p in (listing, gaps):
        p.add_argument(
            "--from", dest="start", metavar="T", help=TIME_FROM + " (default: an hour before --to)"
        )
        p.add_argument("--to", dest="end", metavar="T", help=TIME_TO + " (default: now)")

    export = sub.add_parser("export", help="export a range as a signed evidence package")
    export.add_argument("camera_id")
    export.add_argument("--from", dest="start", required=True, metavar="T", help=TIME_FROM)
    export.add_argument("--to", dest="end", required=True, metavar="T", help=TIME_TO)
    export.add_argument("--reason", required=True, help="why (in the manifest and the audit)")
    export.add_argument("--user", default="cli", help="who exports (default: cli)")
    export.add_argument("-o", "--output", type=Path, required=True, help="package .zip")

    verify = sub.add_parser("verify", help="check an evidence package offline")
    verify.add_argument("package", type=Path)
    verify.add_argument("--key", type=Path, help="the hub's public key to trust (PEM)")
    common(verify)

    keys = sub.add_parser("keys", help="the hub's signing key")
    key_actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    public = key_actions.add_parser("public", help="print the public key (PEM)")
    for p in (listing, gaps, report, export, public):
        p.add_argument("-c", "--config", type=Path, help="site file")
        p.add_argument(
            "--data", type=Path, help="data directory (default: the running hub's; docs/cli.md)"
        )
        common(p)


def _when(hub: Any, value: str | None, default: float) -> float:
    from csuhub.cli import EXIT_USAGE, CliError

    if value is None:
        return default
    try:
        return parse_time(value, hub.config.hub["timezone"])
    except TimeError as err:
        raise CliError(str(err), EXIT_USAGE) from None


def _fmt(hub: Any, epoch: float) -> str:
    return iso(epoch, hub.config.hub["timezone"])


def _range(hub: Any, args: argparse.Namespace, now: float) -> tuple[float, float]:
    """The range asked for; an inverted or empty one is an error, not "100 %"."""
    from csuhub.cli import EXIT_INVALID, EXIT_USAGE, CliError

    if args.recordings_command == "report":
        tz = ZoneInfo(hub.config.hub["timezone"])
        try:
            day = (
                dt.date.fromisoformat(args.day)
                if args.day
                else dt.datetime.fromtimestamp(now, tz).date() - dt.timedelta(days=1)
            )
        except ValueError:
            raise CliError(f"--day {args.day!r} is not a date (YYYY-MM-DD)", EXIT_USAGE) from None
        # midnight to midnight in the hub's zone: 23 or 25 hours on the days clocks change
        start = dt.datetime.combine(day, dt.time(0), tz).timestamp()
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).timestamp()
        return start, end
    end = _when(hub, args.end, now)
    start = _when(hub, args.start, end - 3600)
    if end <= start:
        to = _fmt(hub, end) if args.end else f"now, {_fmt(hub, end)}"
        raise CliError(
            f"--from {_fmt(hub, start)} is not before --to ({to}); nothing to report",
            EXIT_INVALID,
        )
    return start, end


async def recorder_now(hub: Any, camera_id: str) -> Any:
    """What the CLI can know of a camera's recorder from outside the hub: it runs
    if a hub runs on this data directory and the camera is online and authorised
    (what the hub requires to record). The open segment is then bounded by the
    segment length, so a recorder that has silently stopped is a hole again after
    one segment."""
    from csuhub.cli import hub_pid
    from csuhub.recording.continuity import RecorderNow

    segment = float((hub.config.section("recording") or {}).get("segment", 60.0))
    if hub_pid(hub.data_dir) is None:
        return RecorderNow(False, segment)
    row = await hub.store.get_camera(camera_id)
    running = (
        row is not None
        and row.state in ("online", "degraded")
        and row.authorization_status in ("valid", "expiring")
    )
    return RecorderNow(running, segment)


def cmd_recordings(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, CliError, hub_for, plural, require_data, table
    from csuhub.recording.continuity import continuity, known_camera

    hub = hub_for(args)
    require_data(hub)
    now = time.time()
    start, end = _range(hub, args, now)

    async def run() -> int:
        await hub.store.open()
        try:
            if not await known_camera(hub.store, args.camera_id):
                raise CliError(
                    f"no camera {args.camera_id!r} in the register, the index or the "
                    f"destruction register of {hub.data_dir} (see csuhub cameras list)",
                    EXIT_INVALID,
                )
            if args.recordings_command == "list":
                segments = await hub.store.segments(args.camera_id, start, end)
                rows = [
                    (_fmt(hub, s.start), f"{s.duration:.2f}s", s.size, s.status, s.path)
                    for s in segments
                ]
                out.document(
                    {"segments": [s.as_dict() for s in segments]},
                    table(rows, ("START", "DURATION", "BYTES", "STATUS", "PATH"), right={1, 2})
                    + f"\n{plural(len(rows), 'segment')}"
                    if rows
                    else "no segments in that range",
                )
                return 0
            recorder = await recorder_now(hub, args.camera_id)
            report = await continuity(
                hub.store, args.camera_id, start, end, now=now, recorder=recorder
            )
            out.document(report, _human_report(hub, report))
            return 0
        finally:
            await hub.store.close()

    return asyncio.run(run())


def _human_report(hub: Any, report: dict[str, Any]) -> str:
    from csuhub.cli import table

    camera, start, end = report["camera_id"], report["from"], report["to"]
    if report["percent"] is None:
        head = f"{camera}: nothing measurable yet from {_fmt(hub, start)} to {_fmt(hub, end)}"
    else:
        head = (
            f"{camera}: {report['percent']:.3f} % recorded from {_fmt(hub, start)} to "
            f"{_fmt(hub, end)} ({report['recorded_s']:.1f}s of {report['measured_s']:.1f}s"
        )
        left_out = [
            f"{report[key]:.1f}s {what}"
            for key, what in (("in_progress_s", "being recorded"), ("future_s", "in the future"))
            if report[key]
        ]
        head += f"; not counted: {', '.join(left_out)})" if left_out else ")"
    rows = [
        (
            "gap",
            _fmt(hub, gap["start"]),
            "->",
            _fmt(hub, gap["end"]),
            f"{gap['duration']:.1f}s",
            gap["reason"],
        )
        for gap in report["gaps"]
    ]
    if not rows:
        return head
    body = table(rows, right={4})
    return head + "\n" + "\n".join("  " + line for line in body.splitlines())


def cmd_export(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, CliError, require_data
    from csuhub.cli_cameras import _hub
    from csuhub.recording.export import ExportError, export_evidence

    hub = _hub(args)
    require_data(hub)  # footage is read from an existing hub, never a new empty one
    start = _when(hub, args.start, 0)
    end = _when(hub, args.end, 0)
    output = args.output.resolve()
    if output.exists():
        raise CliError(f"{output} exists; choose another name", EXIT_INVALID)

    progress = out.progress  # whole lines when stderr is not a terminal (csuhub.cli.Output)

    async def run() -> dict[str, Any]:
        await hub.store.open()
        try:
            return await export_evidence(
                hub,
                args.camera_id,
                start,
                end,
                user=args.user,
                reason=args.reason,
                output=output,
                progress=progress,
            )
        finally:
            await hub.store.close()

    try:
        manifest = asyncio.run(run())
    except ExportError as err:
        raise CliError(f"export refused: {err}", EXIT_INVALID) from None
    out.end_line()
    actual = manifest["actual"]
    out.emit(
        f"{output}: {actual['duration']:.2f}s of {args.camera_id} "
        f"({_fmt(hub, actual['from'])} -> {_fmt(hub, actual['to'])}), "
        f"{len(manifest['gaps'])} gap(s), sha256 {manifest['output']['sha256'][:16]}...",
        event="exported",
        package=str(output),
        manifest=manifest,
    )
    return 0


def cmd_verify(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
    from csuhub.recording.export import verify_package

    if not args.package.exists():
        raise CliError(f"{args.package}: no such file", EXIT_USAGE)
    trusted = args.key.read_bytes() if args.key else None
    result = verify_package(args.package, trusted)
    if result.ok:
        manifest = result.manifest or {}
        out.document(
            {"ok": True, "package": str(args.package), "manifest": manifest},
            f"{args.package}: intact (signature and every hash verified; camera "
            f"{manifest.get('camera', {}).get('id')}, exported by "
            f"{manifest.get('exported_by')})",
        )
        return EXIT_OK
    out.document(
        {"ok": False, "package": str(args.package), "problems": result.problems},
        f"{args.package}: TAMPERED\n" + "\n".join(f"  {p}" for p in result.problems),
    )
    return EXIT_INVALID


def cmd_keys(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import require_data
    from csuhub.cli_cameras import _hub
    from csuhub.recording.signing import load_or_create, public_pem

    hub = _hub(args)
    require_data(hub)  # a mistyped --data must not mint a key nobody will ever use
    pem = public_pem(load_or_create(hub.data_dir)).decode()
    out.document({"public_key": pem}, pem.rstrip())
    return 0
