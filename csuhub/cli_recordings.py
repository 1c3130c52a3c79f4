"""``csuhub recordings``, ``csuhub export``, ``csuhub verify``, ``csuhub keys``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from csuhub.recording.timeutil import TimeError, iso, parse_time


def add_recording_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    recordings = sub.add_parser("recordings", help="segments, gaps and continuity reports")
    actions = recordings.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="segments of a camera in a range")
    gaps = actions.add_parser("gaps", help="what was not recorded in a range, and why")
    report = actions.add_parser("report", help="daily continuity: percentage and gaps")
    report.add_argument("--day", help="YYYY-MM-DD (default: yesterday)")
    for p in (listing, gaps, report):
        p.add_argument("camera_id")
    for p in (listing, gaps):
        p.add_argument("--from", dest="start", help="start (default: an hour ago)")
        p.add_argument("--to", dest="end", help="end (default: now)")

    export = sub.add_parser("export", help="export a range as a signed evidence package")
    export.add_argument("camera_id")
    export.add_argument("--from", dest="start", required=True)
    export.add_argument("--to", dest="end", required=True)
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
        p.add_argument("--data", type=Path, help="data directory")
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


def cmd_recordings(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli_cameras import _hub
    from csuhub.recording.continuity import continuity

    hub = _hub(args)

    async def run() -> int:
        await hub.store.open()
        try:
            now = time.time()
            if args.recordings_command == "report":
                day = args.day or time.strftime("%Y-%m-%d", time.localtime(now - 86400))
                start = _when(hub, f"{day}T00:00", 0)
                end = start + 86400
            else:
                end = _when(hub, args.end, now)
                start = _when(hub, args.start, end - 3600)
            if args.recordings_command == "list":
                segments = await hub.store.segments(args.camera_id, start, end)
                lines = [
                    f"{_fmt(hub, s.start)}  {s.duration:7.2f}s  {s.size:>10} B  "
                    f"{s.status:<8} {s.path}"
                    for s in segments
                ]
                out.document(
                    {"segments": [s.as_dict() for s in segments]},
                    "\n".join(lines) or "no segments in that range",
                )
                return 0
            report = await continuity(hub.store, args.camera_id, start, end)
            lines = [
                f"{args.camera_id}: {report['percent']:.3f} % recorded from "
                f"{_fmt(hub, start)} to {_fmt(hub, end)}"
            ]
            for gap in report["gaps"]:
                lines.append(
                    f"  gap {_fmt(hub, gap['start'])} -> {_fmt(hub, gap['end'])} "
                    f"({gap['duration']:.1f}s): {gap['reason']}"
                )
            out.document(report, "\n".join(lines))
            return 0
        finally:
            await hub.store.close()

    return asyncio.run(run())


def cmd_export(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, CliError
    from csuhub.cli_cameras import _hub
    from csuhub.recording.export import ExportError, export_evidence

    hub = _hub(args)
    start = _when(hub, args.start, 0)
    end = _when(hub, args.end, 0)
    output = args.output.resolve()
    if output.exists():
        raise CliError(f"{output} exists; choose another name", EXIT_INVALID)

    def progress(stage: str, fraction: float) -> None:
        if out.as_json:
            out.emit("", event="progress", stage=stage, fraction=round(fraction, 3))
        else:
            sys.stderr.write(f"\r{stage:<20} {fraction * 100:5.1f} %")
            sys.stderr.flush()

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
        if not out.as_json:
            sys.stderr.write("\n")
        raise CliError(f"export refused: {err}", EXIT_INVALID) from None
    if not out.as_json:
        sys.stderr.write("\n")
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
    from csuhub.cli_cameras import _hub
    from csuhub.recording.signing import load_or_create, public_pem

    hub = _hub(args)
    hub.data_dir.mkdir(parents=True, exist_ok=True)
    pem = public_pem(load_or_create(hub.data_dir)).decode()
    out.document({"public_key": pem}, pem.rstrip())
    return 0
