"""``csuhub recordings``, ``csuhub export``, ``csuhub verify``, ``csuhub keys``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from csuhub.recording.timeutil import TimeError, check_epoch, iso, parse_time

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
    export.add_argument(
        "--user",
        help="who exports, in the manifest and the audit (default: your login name)",
    )
    export.add_argument(
        "-o", "--output", type=Path, required=True, help="package .zip (in an existing folder)"
    )

    verify = sub.add_parser(
        "verify",
        help="check an evidence package offline: exit 0 intact and signed by a trusted key, "
        "1 tampered, 2 unreadable, 3 consistent but the signer is not trusted",
    )
    verify.add_argument("package", type=Path)
    verify.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="trust this public key (PEM, from csuhub keys public); repeatable",
    )
    verify.add_argument(
        "--fingerprint",
        action="append",
        default=[],
        metavar="SHA256:...",
        help="trust the key with this fingerprint (csuhub keys show); repeatable",
    )
    verify.add_argument(
        "--data", type=Path, help="trust the signing key of the hub with this data directory"
    )
    common(verify)

    keys = sub.add_parser("keys", help="the hub's signing key, and the signers you trust")
    key_actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    public = key_actions.add_parser("public", help="print the hub's public key (PEM)")
    show = key_actions.add_parser("show", help="print the hub's key fingerprint")
    trust = key_actions.add_parser("trust", help="trust a signer (your trust store)")
    trust.add_argument("key", metavar="FILE|FINGERPRINT", help="a public key PEM or SHA256:...")
    trust.add_argument("--label", default="", help="whose key it is (shown by keys list)")
    untrust = key_actions.add_parser("untrust", help="stop trusting a signer")
    untrust.add_argument("key", metavar="FILE|FINGERPRINT")
    trusted = key_actions.add_parser("list", help="the signers your trust store holds")
    for p in (trust, untrust, trusted):
        common(p)
    for p in (listing, gaps, report, export, public, show):
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
    from csuhub.cli import EXIT_INVALID, EXIT_USAGE, CliError, plural, require_data
    from csuhub.cli_cameras import _hub
    from csuhub.recording.export import ExportError, OutputError, export_evidence

    output = args.output.resolve()
    _check_output(output)
    user = args.user or _login_name()
    hub = _hub(args)
    require_data(hub)  # footage is read from an existing hub, never a new empty one
    start = _when(hub, args.start, 0)
    end = _when(hub, args.end, 0)
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
                user=user,
                reason=args.reason,
                output=output,
                progress=progress,
            )
        finally:
            await hub.store.close()

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
    from csuhub.cli import EXIT_USAGE, CliError

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


def cmd_verify(args: argparse.Namespace, out: Any) -> int:
    """Exit 0 intact (trusted signer), 1 tampered, 2 unreadable or usage, 3 untrusted."""
    from csuhub.cli import EXIT_USAGE, CliError
    from csuhub.recording.trust import (
        TrustError,
        TrustStore,
        fingerprint_anchor,
        hub_anchor,
        key_file_anchor,
    )
    from csuhub.recording.verify import printable, verify_package

    try:
        anchors = [key_file_anchor(path) for path in args.key]
        anchors += [fingerprint_anchor(text) for text in args.fingerprint]
        if args.data is not None:
            anchors.append(hub_anchor(args.data))
        # anchors given here are the only ones; the trust store is for when none is
        if not anchors:
            anchors = TrustStore().anchors()
    except TrustError as err:
        raise CliError(printable(str(err)), EXIT_USAGE) from None
    result = verify_package(args.package, anchors)
    shown = printable(str(args.package))
    out.document(
        {"package": shown, **result.as_dict(), "anchors": [a.fingerprint for a in anchors]},
        _verdict(shown, result, anchors),
    )
    return result.exit_code


def _verdict(shown: str, result: Any, anchors: list[Any]) -> str:
    from csuhub.recording.verify import Status, printable

    if result.status in (Status.TAMPERED, Status.UNREADABLE):
        head = "TAMPERED" if result.status is Status.TAMPERED else "cannot be verified"
        return f"{shown}: {head}\n" + "\n".join(f"  {p}" for p in result.problems)
    manifest = result.manifest or {}
    camera = manifest.get("camera")
    facts = printable(
        f"camera {camera.get('id') if isinstance(camera, dict) else None}, hub "
        f"{manifest.get('hub')}, exported by {manifest.get('exported_by')}"
    )
    if result.status is Status.INTACT:
        return (
            f"{shown}: intact\n  signature and every member's SHA-256 verified\n"
            f"  signed by {result.signer} (trusted: {printable(result.trusted_by or '')})\n"
            f"  {facts}"
        )
    trusted = ", ".join(a.fingerprint for a in anchors) or "none (csuhub keys list is empty)"
    return (
        f"{shown}: consistent but the signer is not trusted\n"
        f"  signer {result.signer}\n"
        f"  trusted here: {trusted}\n"
        f"  the signature and every hash agree, but only with the key inside the package;\n"
        f"  compare the signer with the fingerprint the hub gives (csuhub keys show, the\n"
        f"  requisition receipt), then: csuhub verify --fingerprint {result.signer} ...\n"
        f"  the package claims: {facts} (unverified until the signer is)"
    )


def cmd_keys(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, CliError, require_data
    from csuhub.cli_cameras import _hub
    from csuhub.recording.signing import fingerprint, load_private, public_pem

    if args.keys_command in ("trust", "untrust", "list"):
        return _trust_store(args, out)
    hub = _hub(args)
    require_data(hub)  # a mistyped --data must not mint a key nobody will ever use
    try:
        key = load_private(hub.data_dir)
    except (OSError, ValueError) as err:
        raise CliError(f"the hub's signing key cannot be read: {err}", EXIT_INVALID) from None
    if key is None:
        raise CliError(
            f"no signing key in {hub.data_dir} yet: the hub makes it when it first starts",
            EXIT_INVALID,
        )
    pem = public_pem(key).decode()
    print_ = fingerprint(key)
    if args.keys_command == "show":
        out.document({"fingerprint": print_, "public_key": pem}, print_)
    else:
        out.document({"public_key": pem, "fingerprint": print_}, pem.rstrip())
    return 0


def _trust_store(args: argparse.Namespace, out: Any) -> int:
    from csuhub.cli import EXIT_INVALID, EXIT_USAGE, CliError, table
    from csuhub.recording.trust import TrustError, TrustStore, resolve
    from csuhub.recording.verify import printable

    store = TrustStore()
    try:
        if args.keys_command == "list":
            entries = store.entries()
            rows = [
                (e["fingerprint"], printable(e.get("label") or "-"), _day(e.get("added")))
                for e in entries
            ]
            out.document(
                {"store": str(store.path), "keys": entries},
                table(rows, ("FINGERPRINT", "LABEL", "ADDED"))
                if rows
                else f"no trusted signers in {store.path}",
            )
            return 0
        fp, label = resolve(args.key)
        if args.keys_command == "trust":
            added = store.add(fp, args.label or label)
            out.emit(
                f"{'trusted' if added else 'already trusted'}: {fp} (store {store.path})",
                event="trusted",
                fingerprint=fp,
                added=added,
                store=str(store.path),
            )
            return 0
        if not store.remove(fp):
            raise CliError(f"{fp} is not in the trust store {store.path}", EXIT_INVALID)
        out.emit(f"no longer trusted: {fp}", event="untrusted", fingerprint=fp)
        return 0
    except TrustError as err:
        raise CliError(printable(str(err)), EXIT_USAGE) from None
    except OSError as err:
        raise CliError(f"trust store {store.path}: {err.strerror or err}", EXIT_INVALID) from None


def _day(epoch: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.localtime(float(epoch)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"
