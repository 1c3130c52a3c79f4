"""``csuhub recordings list|gaps|report`` and ``csuhub export``: the footage of a
camera, read from the data directory (safe beside a running hub)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import os
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from csuhub.cli.common import (
    DATA_HELP,
    EXIT_INVALID,
    EXIT_USAGE,
    TIME_FROM,
    TIME_TO,
    CliError,
    Output,
    add_hub_options,
    hub_for,
    hub_pid,
    open_store,
    plural,
    require_data,
    table,
    when,
)
from csuhub.hub import Hub
from csuhub.recording.continuity import RecorderNow, continuity, known_camera
from csuhub.recording.export import ExportError, OutputError, export_evidence
from csuhub.timeutil import TimeError, check_epoch, iso


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    export.add_argument(
        "--user",
        help="who exports, in the manifest and the audit (default: your login name)",
    )
    export.add_argument(
        "-o", "--output", type=Path, required=True, help="package .zip (in an existing folder)"
    )

    for p in (listing, gaps, report, export):
        add_hub_options(p, data_help=DATA_HELP)


def _fmt(hub: Hub, epoch: float) -> str:
    return iso(epoch, hub.config.hub["timezone"])


def _range(hub: Hub, args: argparse.Namespace, now: float) -> tuple[float, float]:
    """The range asked for; an inverted or empty one is an error, not "100 %"."""
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
        try:
            start = check_epoch(dt.datetime.combine(day, dt.time(0), tz).timestamp())
            end = check_epoch(
                dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).timestamp()
            )
        except (OverflowError, TimeError):  # 9999-12-31 has no next midnight
            raise CliError(
                f"--day {day.isoformat()} is outside the days this hub can report "
                "(1970-01-02 to 9999-12-30)",
                EXIT_USAGE,
            ) from None
        return start, end
    end = when(hub, args.end, now)
    start = when(hub, args.start, end - 3600)
    if end <= start:
        to = _fmt(hub, end) if args.end else f"now, {_fmt(hub, end)}"
        raise CliError(
            f"--from {_fmt(hub, start)} is not before --to ({to}); nothing to report",
            EXIT_INVALID,
        )
    return start, end


async def recorder_now(hub: Hub, camera_id: str) -> RecorderNow:
    """What the CLI can know of a camera's recorder from outside the hub: it runs
    if a hub runs on this data directory and the camera is online and authorised
    (what the hub requires to record). The open segment is then bounded by the
    segment length, so a recorder that has silently stopped is a hole again after
    one segment."""
    segment = hub.config.settings.recording.segment
    if hub_pid(hub.data_dir) is None:
        return RecorderNow(False, segment)
    row = await hub.store.get_camera(camera_id)
    running = (
        row is not None
        and row.state in ("online", "degraded")
        and row.authorization_status in ("valid", "expiring")
    )
    return RecorderNow(running, segment)


def cmd_recordings(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    require_data(hub)
    now = time.time()
    start, end = _range(hub, args, now)

    async def run() -> int:
        async with open_store(hub):
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

    return asyncio.run(run())


def _human_report(hub: Hub, report: dict[str, Any]) -> str:
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


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    output = args.output.resolve()
    _check_output(output)
    user = args.user or _login_name()
    hub = hub_for(args)
    require_data(hub)  # footage is read from an existing hub, never a new empty one
    start = when(hub, args.start, 0)
    end = when(hub, args.end, 0)
    if output.exists():
        raise CliError(f"{output} exists; choose another name", EXIT_INVALID)

    async def run() -> dict[str, Any]:
        async with open_store(hub):
            return await export_evidence(
                hub,
                hub.recording,
                args.camera_id,
                start,
                end,
                user=user,
                reason=args.reason,
                output=output,
                progress=out.progress,
            )

    try:
        manifest = asyncio.run(run())
    except OutputError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    except ExportError as err:
        raise CliError(f"export refused: {err}", EXIT_INVALID) from None
    out.end_line()
    actual = manifest["actual"]
    out.emit(
        f"{output}: {actual['duration']:.2f}s of {args.camera_id} "
        f"({_fmt(hub, actual['from'])} -> {_fmt(hub, actual['to'])}), "
        f"{plural(len(manifest['gaps']), 'gap')}, sha256 {manifest['output']['sha256'][:16]}...",
        event="exported",
        package=str(output),
        manifest=manifest,
    )
    return 0


def _check_output(output: Path) -> None:
    """Refuse an output that cannot be written before any work (exit 2); the export
    writes beside it and renames, so a failure later leaves nothing there either."""
    folder = output.parent
    try:
        output.lstat()
    except FileNotFoundError:
        pass
    except OSError as err:  # a name too long, a file where a folder should be...
        raise CliError(f"cannot write {output}: {err.strerror}", EXIT_USAGE) from None
    if not folder.is_dir():
        raise CliError(f"cannot write {output}: no folder {folder}", EXIT_USAGE)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"cannot write {output}: {folder} is not writable", EXIT_USAGE)


def _login_name() -> str:
    """Who runs the CLI export, for the manifest and the audit: the OS user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


HANDLERS = {"recordings": cmd_recordings, "export": cmd_export}
