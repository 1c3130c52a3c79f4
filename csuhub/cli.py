"""The ``csuhub`` command.

Exit codes (documented in docs/cli.md):
  0  success (a hub stopped by SIGTERM/SIGINT stopped cleanly)
  1  invalid configuration, or the hub failed
  2  usage error, or a file that cannot be read
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Collection, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from csuhub import __version__
from csuhub.cli_blueprints import add_blueprint_parser, cmd_blueprints
from csuhub.cli_cameras import add_camera_parsers, cmd_cameras, cmd_discover
from csuhub.cli_recordings import (
    add_recording_parsers,
    cmd_export,
    cmd_keys,
    cmd_recordings,
    cmd_verify,
)
from csuhub.cli_retention import add_retention_parsers, cmd_requisitions, cmd_retention
from csuhub.config import ERROR, ConfigInvalid
from csuhub.config.yaml_loader import loads
from csuhub.events import (
    AlarmCleared,
    CameraAuthorizationChanged,
    CameraDiscovered,
    CameraStateChanged,
    ComponentFailed,
    ComponentStarted,
    ConfigReloaded,
    ConfigReloadFailed,
    Event,
    GapRecorded,
    HubStarted,
    HubStarting,
    HubStopping,
    PluginFailed,
    RecordingAlert,
    RecordingStateChanged,
    RequisitionChanged,
    RetentionAlert,
    RetentionSwept,
    SegmentRecorded,
    TaskCrashed,
)
from csuhub.hub import Hub, default_data_dir
from csuhub.plugins import PluginState
from csuhub.store import DATABASE, StoreError
from csuhub.web.auth import ROLES, hash_secret, new_secret

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A one-line error for the user, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Output:
    """Human lines by default, JSON lines with ``--json``; progress and errors on stderr."""

    def __init__(
        self, as_json: bool, stream: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.err = err or sys.stderr
        self._open_line = False  # a progress line on a terminal, not yet ended
        self._last_step: tuple[str, int] | None = None

    def emit(self, human: str, **data: Any) -> None:
        if self.as_json:
            self.stream.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
        else:
            self.stream.write(human + "\n")
        self.stream.flush()

    def document(self, data: Any, human: str) -> None:
        if self.as_json:
            self.stream.write(json.dumps(data, default=str, ensure_ascii=False, indent=2) + "\n")
        else:
            self.stream.write(human + ("\n" if human and not human.endswith("\n") else ""))
        self.stream.flush()

    def progress(self, stage: str, fraction: float) -> None:
        """A long task's progress: JSON events with ``--json``; on a terminal, one
        line rewritten in place; anywhere else (a pipe, a log file) whole lines,
        one per stage and per tenth, so a log never holds carriage returns."""
        fraction = min(max(fraction, 0.0), 1.0)
        if self.as_json:
            self.emit("", event="progress", stage=stage, fraction=round(fraction, 3))
            return
        if _isatty(self.err):
            self.err.write(f"\r{stage[:40]:<40} {fraction * 100:5.1f} %")
            self._open_line = True
            if fraction >= 1.0:
                self.end_line()
        else:
            step = (stage, int(fraction * 10))
            if step != self._last_step:
                self._last_step = step
                self.err.write(f"{stage}: {fraction * 100:.0f} %\n")
        self.err.flush()

    def end_line(self) -> None:
        """End a progress line left open on a terminal (and nothing else: an error
        after no progress must not start with a blank line)."""
        if self._open_line:
            self.err.write("\n")
            self.err.flush()
            self._open_line = False

    def error(self, message: str, code: int) -> None:
        if self.as_json:
            self.emit("", error=message, exit_code=code)
        else:
            self.end_line()
            self.err.write(f"csuhub: error: {message}\n")
            self.err.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 camera``, ``2 cameras``, ``0 cameras``: never ``camera(s)``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def table(
    rows: Sequence[Sequence[object]],
    header: Sequence[str] | None = None,
    *,
    right: Collection[int] = (),
) -> str:
    """Columns as wide as their longest value (header included), two spaces
    apart; ``right`` columns (numbers) are right-aligned. The last column is not
    padded, so no line ends in blanks."""
    lines = [list(header)] if header else []
    lines += [["-" if v is None else str(v) for v in row] for row in rows]
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = []
        for i, value in enumerate(line):
            last = i == len(line) - 1
            if i in right:
                cells.append(value.rjust(widths[i]))
            else:
                cells.append(value if last else value.ljust(widths[i]))
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csuhub", description="Hub for an urban video-supervision centre (CSU)."
    )
    parser.add_argument("--version", action="version", version=f"csuhub {__version__}")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="machine-readable output")

    run = sub.add_parser("run", help="run the hub on a site file")
    run.add_argument("-c", "--config", required=True, type=Path, help="site YAML file")
    run.add_argument("--data", type=Path, help="data directory (overrides hub.data_dir)")
    common(run)

    demo = sub.add_parser("demo", help="run a demo hub with simulated cameras")
    demo.add_argument(
        "--data", type=Path, help=f"data directory (default {default_data_dir('demo')})"
    )
    demo.add_argument("--port", type=int, help="web port (default 8480; 0 picks a free one)")
    demo.add_argument("--cameras", type=int, help="number of simulated cameras (default 4)")
    demo.add_argument(
        "--site", type=Path, help="rehearse this site file, its cameras played by simulated ones"
    )
    common(demo)

    check = sub.add_parser("check", help="validate a site file and report every error")
    check.add_argument("config", type=Path, nargs="?", help="site YAML file")
    check.add_argument("-c", "--config", dest="config_opt", type=Path, help=argparse.SUPPRESS)
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    common(check)

    reload = sub.add_parser(
        "reload", help="validate the site file, then make the running hub apply it"
    )
    reload.add_argument("-c", "--config", required=True, type=Path, help="site YAML file")
    reload.add_argument("--data", type=Path, help="data directory (overrides hub.data_dir)")
    reload.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the hub")
    common(reload)

    plugins = sub.add_parser("plugins", help="list plugins, their hooks and state")
    plugins.add_argument("-c", "--config", type=Path, help="honour this site's plugins.disabled")
    common(plugins)

    add_blueprint_parser(sub, common)
    add_camera_parsers(sub, common)
    add_recording_parsers(sub, common)
    add_retention_parsers(sub, common)

    tokens = sub.add_parser("tokens", help="manage API tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = tokens_sub.add_parser("create", help="create a token (shown once)")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, required=True)
    listing = tokens_sub.add_parser("list", help="list tokens (never their secrets)")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
    for p in (create, listing, revoke):
        p.add_argument("-c", "--config", type=Path, help="site file (for its data_dir)")
        p.add_argument("--data", type=Path, help="data directory")
        common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2 via argparse
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    out = Output(getattr(args, "json", False))
    handlers = {
        "run": cmd_run,
        "demo": cmd_demo,
        "check": cmd_check,
        "plugins": cmd_plugins,
        "tokens": cmd_tokens,
        "reload": cmd_reload,
        "blueprints": cmd_blueprints,
        "discover": cmd_discover,
        "cameras": cmd_cameras,
        "recordings": cmd_recordings,
        "export": cmd_export,
        "verify": cmd_verify,
        "keys": cmd_keys,
        "retention": cmd_retention,
        "requisitions": cmd_requisitions,
    }
    try:
        return handlers[args.command](args, out)
    except CliError as err:
        out.error(str(err), err.code)
        return err.code
    except ConfigInvalid as err:  # e.g. a retention policy that validates but cannot be built
        _report_invalid(out, err)
        return EXIT_INVALID
    except StoreError as err:  # a corrupted database, or one from a newer csuhub
        out.error(str(err), EXIT_USAGE)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


# -- loading ------------------------------------------------------------------


def _load_hub(path: Path, **kwargs: Any) -> Hub:
    """A hub for a site file; unreadable files are a one-line error with exit 2."""
    try:
        return Hub.from_file(path, **kwargs)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", EXIT_USAGE) from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a site file", EXIT_USAGE) from None
    except PermissionError:
        raise CliError(f"{path}: permission denied", EXIT_USAGE) from None
    except OSError as err:
        raise CliError(f"{path}: cannot read: {err.strerror}", EXIT_USAGE) from None


def hub_pid(data_dir: Path) -> int | None:
    """The pid of the hub running on ``data_dir`` (it holds ``csuhub.pid``), if any."""
    try:
        pid = int((data_dir / "csuhub.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's
    return pid


def locate_data_dir() -> Path:
    """Where the hub's data is when neither ``--data`` nor ``-c`` says.

    The two places a hub writes by default are looked at: ``csuhub run``'s
    (``~/.local/share/csuhub``) and ``csuhub demo``'s (``.../csuhub/demo``).
    The one whose hub is running wins; else the only one holding data. Both
    holding data with neither (or both) running is ambiguous, and an error:
    answering from the wrong hub would be a confident wrong answer. With no
    data anywhere, the default is returned for the caller to refuse.
    """
    places = [default_data_dir(), default_data_dir("demo")]
    present = [p for p in places if (p / DATABASE).is_file()]
    running = [p for p in present if hub_pid(p) is not None]
    if len(running) == 1:
        return running[0]
    if len(present) > 1:
        raise CliError(
            f"hub data in both {present[0]} and {present[1]}; pass --data to say which",
            EXIT_USAGE,
        )
    return present[0] if present else places[0]


def hub_for(args: argparse.Namespace) -> Hub:
    """The hub a command acts on: its site file (``-c``) and data directory
    (``--data``, the site's, or the one ``locate_data_dir`` finds). Nothing is
    created here; ``require_data`` says whether the data may be used."""
    config = getattr(args, "config", None)
    data = getattr(args, "data", None)
    if config is None and data is None and hasattr(args, "data"):
        data = locate_data_dir()
    if config is not None:
        hub = _load_hub(config, data_dir=data, web=False)
    else:
        hub = Hub({}, source="<none>", data_dir=data, web=False)
    try:
        hub.setup()
    except ConfigInvalid as err:
        raise CliError(
            "; ".join(str(i) for i in err.issues if i.severity == ERROR), EXIT_INVALID
        ) from None
    return hub


def require_data(hub: Hub, *, writes: bool = False) -> None:
    """Refuse to act on a data directory that holds no hub, instead of creating
    one: a mistyped ``--data`` would otherwise answer "0 % recorded" from an
    empty database it just made. A command that writes may start the database
    in an existing directory (tokens before the first start); one that only
    reads needs the database."""
    path = hub.data_dir
    database = path / DATABASE
    # an empty file is not hub data: opening it would migrate it into a new database
    missing = (
        not path.is_dir() if writes else not database.is_file() or database.stat().st_size == 0
    )
    if missing:
        raise CliError(f"no hub data at {path}; pass --data or start the hub", EXIT_USAGE)


def _demo_raw(cameras: int | None, port: int | None) -> Any:
    text = resources.files("csuhub").joinpath("defaults/demo.yaml").read_text("utf-8")
    raw = loads(text, "<demo>")
    if cameras is not None:
        if cameras < 0 or cameras > 64:
            raise CliError("--cameras must be between 0 and 64")
        patterns = ["testsrc2", "smptebars", "rgbtestsrc", "mandelbrot", "testsrc", "yuvtestsrc"]
        raw["cameras"] = [
            {
                "id": f"cam-{i:02d}",
                "name": f"Caméra simulée {i}",
                "driver": "simcam",
                "options": {"pattern": patterns[(i - 1) % len(patterns)]},
                "authorization": {
                    "reference": "DEMO-2022-VP-001",
                    "issued": "2022-01-10",
                    "expires": "2099-01-09",
                },
            }
            for i in range(1, cameras + 1)
        ]
    if port is not None:
        raw["hub"]["web"]["port"] = port
    return raw


def _report_invalid(out: Output, err: ConfigInvalid) -> None:
    errors = [i for i in err.issues if i.severity == ERROR]
    warnings = [i for i in err.issues if i.severity != ERROR]
    if out.as_json:
        out.document(
            {
                "valid": False,
                "errors": [i.as_dict() for i in errors],
                "warnings": [i.as_dict() for i in warnings],
            },
            "",
        )
    else:
        for issue in err.issues:
            sys.stderr.write(f"{issue}\n")
        summary = plural(len(errors), "error")
        if warnings:
            summary += f", {plural(len(warnings), 'warning')}"
        sys.stderr.write(summary + "\n")


def cmd_check(args: argparse.Namespace, out: Output) -> int:
    path = args.config or args.config_opt
    if path is None:
        raise CliError("check needs a site file: csuhub check site.yaml")
    try:
        hub = _load_hub(path, web=False, strict=args.strict)
        config = hub.setup()
        # what `run` would refuse: a retention policy that validates but cannot be built
        hub.retention.build(config)
    except ConfigInvalid as err:
        _report_invalid(out, err)
        return EXIT_INVALID
    cameras = len(config.section("cameras", []))
    if not out.as_json:
        for warning in config.warnings:
            sys.stderr.write(f"{warning}\n")
    note = f", {plural(len(config.warnings), 'warning')}" if config.warnings else ""
    out.document(
        {
            "valid": True,
            "file": str(path),
            "cameras": cameras,
            "errors": [],
            "warnings": [w.as_dict() for w in config.warnings],
            "blueprints": config.blueprints,
        },
        f"{path}: valid ({plural(cameras, 'camera')}{note})",
    )
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace, out: Output) -> int:
    hub = Hub({}, source="<none>", web=False)
    if args.config is not None:
        try:
            hub = _load_hub(args.config, web=False)
        except ConfigInvalid:
            pass  # bad YAML: list plugins without the site's plugins.disabled
    try:
        hub.setup()
    except ConfigInvalid:
        pass  # listing plugins must work even when the site file is wrong
    records = sorted(hub.pm.records.values(), key=lambda r: r.name)
    provided: dict[str, list[str]] = {}
    for registry in hub.registry.spec_registries():
        for item in registry:
            provided.setdefault(item.plugin, []).append(f"{registry.kind}:{item.spec.name}")
    for section, (_, plugin) in hub.registry.config_sections.items():
        provided.setdefault(plugin, []).append(f"config_section:{section}")
    data = [{**r.as_dict(), "provides": sorted(provided.get(r.name, []))} for r in records]
    lines = []
    for r in records:
        mark = {"loaded": "✓", "disabled": "-", "failed": "✗"}[str(r.state)]
        lines.append(f"{mark} {r.name} {r.version or ''} [{r.state}]".rstrip())
        if r.reason:
            lines.append(f"    reason: {r.reason}")
        if r.hooks:
            lines.append(f"    hooks: {', '.join(r.hooks)}")
        if provided.get(r.name):
            lines.append(f"    provides: {', '.join(sorted(provided[r.name]))}")
    out.document({"plugins": data}, "\n".join(lines) or "no plugins")
    return EXIT_OK  # listing succeeded; failed plugins are data, shown above


def _describe(event: Event) -> str | None:
    match event:
        case HubStarting():
            return f"hub '{event.hub_name}': starting"
        case HubStarted():
            url = (
                f" — API on {event.web_url} (GET {event.web_url}/api/health)"
                if event.web_url
                else ""
            )
            return f"hub '{event.hub_name}': running{url}"
        case HubStopping():
            return f"hub '{event.hub_name}': stopping ({event.reason or 'requested'})"
        case PluginFailed():
            return f"plugin {event.plugin}: FAILED at {event.stage}: {event.reason}"
        case CameraStateChanged():
            why = f" ({event.reason})" if event.reason else ""
            return f"camera {event.camera_id}: {event.old_state or 'new'} → {event.new_state}{why}"
        case CameraDiscovered():
            return f"discovery {event.source}: found {event.ref} at {event.address}"
        case ComponentStarted():
            return f"{event.kind} {event.component} ({event.plugin}): started"
        case ComponentFailed():
            return f"{event.kind} {event.component} ({event.plugin}): FAILED: {event.reason}"
        case ConfigReloaded():
            cams = event.cameras
            text = (
                f"configuration reloaded ({event.trigger}): "
                f"{', '.join(event.sections) or 'no change'}; cameras "
                f"+{len(cams['added'])} -{len(cams['removed'])} ~{len(cams['changed'])}"
            )
            if event.restart_required:
                text += f"; restart needed for {', '.join(event.restart_required)}"
            return text
        case ConfigReloadFailed():
            return (
                f"configuration reload refused ({event.trigger}); the running one stays:\n  "
                + "\n  ".join(event.errors)
            )
        case RecordingStateChanged():
            why = f" ({event.reason})" if event.reason else ""
            return f"recording {event.camera_id}: {event.state}{why}"
        case SegmentRecorded():
            return (
                f"segment {event.camera_id}: {event.end - event.start:.1f}s, "
                f"{event.size} bytes -> {event.path}"
            )
        case GapRecorded():
            return (
                f"gap {event.camera_id}: {event.end - event.start:.1f}s not recorded "
                f"({event.reason})"
            )
        case RecordingAlert():
            return f"ALERT {event.kind} {event.camera_id or ''}: {event.message}"
        case CameraAuthorizationChanged():
            return f"camera {event.camera_id}: authorisation {event.status}" + (
                f" (expires {event.expires})" if event.expires else ""
            )
        case TaskCrashed():
            return f"task {event.task} crashed ({event.error}); restart in {event.restart_in:.1f}s"
        case RetentionSwept():
            if not event.segments:
                return None
            return (
                f"retention: destroyed {plural(event.segments, 'segment')}, {event.bytes} bytes "
                f"({', '.join(f'{k} {v}' for k, v in sorted(event.by_policy.items()))})"
            )
        case RetentionAlert():
            return f"RETENTION {event.kind} {event.camera_id or ''}: {event.message}"
        case RequisitionChanged():
            return f"requisition {event.reference}: {event.status}"
        case AlarmCleared():
            # raised alarms are printed as RecordingAlert / RetentionAlert, once and at
            # each reminder; the end of the condition is news too
            where = f" {event.camera_id}" if event.camera_id else ""
            return (
                f"CLEARED {event.source} {event.kind}{where} after "
                f"{_duration(event.duration)}: {event.message}"
            )
    return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _run_hub(hub: Hub, out: Output, banner: list[str] | None = None) -> int:
    def on_event(event: Event) -> None:
        text = _describe(event)
        if text is not None:
            out.emit(text, **event.as_dict())

    hub.bus.listen(Event, on_event)

    def started(h: Hub) -> None:
        for line in banner or []:
            out.emit(line, event="info", message=line)
        cap, law = h.retention.cap()
        default = float(h.retention.config.get("default", 14 * 86400))
        policies = ", ".join(name for name, _ in h.retention.policies) or "none"
        out.emit(
            f"retention: {default / 86400:g} days by default, legal maximum {cap / 86400:g} "
            f"days ({law}); policies: {policies}; sweep every "
            f"{float(h.retention.config.get('interval', 60)):g}s "
            "(csuhub retention status, GET /api/retention/status)",
            event="retention",
            default=default,
            cap=cap,
            law=law,
            policies=[name for name, _ in h.retention.policies],
        )
        failed = [r for r in h.pm.records.values() if r.state is PluginState.FAILED]
        for record in failed:
            out.emit(
                f"plugin {record.name}: FAILED: {record.reason}",
                event="plugin_state",
                plugin=record.name,
                state="failed",
                reason=record.reason,
            )

    async def main() -> str:
        return await hub.run(on_started=started)

    try:
        reason = asyncio.run(main())
    except ConfigInvalid as err:
        _report_invalid(out, err)
        return EXIT_INVALID
    except OSError as err:
        raise CliError(str(err), EXIT_INVALID) from None
    out.emit(f"hub stopped ({reason or 'done'})", event="hub_stopped", reason=reason)
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: Output) -> int:
    try:
        hub = _load_hub(args.config, data_dir=args.data)
        config = hub.setup()
    except ConfigInvalid as err:
        _report_invalid(out, err)
        return EXIT_INVALID
    for warning in config.warnings:
        out.emit(str(warning), event="config_warning", **warning.as_dict())
    return _run_hub(hub, out)


def cmd_reload(args: argparse.Namespace, out: Output) -> int:
    """Validate here first; only a valid file is sent to the running hub (SIGHUP)."""
    try:
        hub = _load_hub(args.config, data_dir=args.data, web=False)
        hub.retention.build(hub.setup())
    except ConfigInvalid as err:
        _report_invalid(out, err)
        sys.stderr.write("not reloaded: the running hub keeps its configuration\n")
        return EXIT_INVALID
    pid = hub_pid(hub.data_dir)
    if pid is None:
        raise CliError(f"no hub is running on {hub.data_dir}", EXIT_INVALID)
    status = hub.data_dir / "reload.json"
    before = _reload_generation(status)
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:  # another user's hub: not ours to signal
        raise CliError(f"no hub is running on {hub.data_dir}", EXIT_INVALID) from None
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _reload_generation(status) != before:
            report = json.loads(status.read_text())
            break
    else:
        raise CliError(f"the hub (pid {pid}) did not report within {args.timeout:g}s", 1)
    if report["ok"]:
        diff = report["diff"]
        cams = diff["cameras"]
        human = (
            f"reloaded: sections changed: {', '.join(diff['sections']) or 'none'}; cameras "
            f"+{len(cams['added'])} -{len(cams['removed'])} ~{len(cams['changed'])}"
        )
        if diff["restart_required"]:
            human += f"; restart needed for: {', '.join(diff['restart_required'])}"
        out.document(report, human)
        return EXIT_OK
    out.document(report, "reload refused by the hub:\n" + "\n".join(report["errors"]))
    return EXIT_INVALID


def _reload_generation(path: Path) -> tuple[int, float] | None:
    try:
        data = json.loads(path.read_text())
        return (int(data["generation"]), float(data["time"]))
    except (OSError, ValueError, KeyError):
        return None


def cmd_demo(args: argparse.Namespace, out: Output) -> int:
    data_dir = args.data or default_data_dir("demo")
    if args.site is not None:
        hub = _simulated_site(args.site, data_dir, args.port, out)
    else:
        hub = Hub(_demo_raw(args.cameras, args.port), source="<demo>", data_dir=data_dir)
    try:
        hub.setup()
    except ConfigInvalid as err:
        _report_invalid(out, err)
        return EXIT_INVALID
    out.emit(
        f"csuhub {__version__} demo — data in {hub.data_dir}",
        event="info",
        data_dir=str(hub.data_dir),
    )
    loaded = ", ".join(r.name for r in hub.pm.loaded()) or "none"
    out.emit(f"plugins loaded: {loaded}", event="info", plugins=[r.name for r in hub.pm.loaded()])
    out.emit(
        "simulated cameras are encoded with ffmpeg on first start (a few seconds)", event="info"
    )
    return _run_hub(hub, out, banner=["press Ctrl+C to stop"])


def _simulated_site(path: Path, data_dir: Path, port: int | None, out: Output) -> Hub:
    """A real site file with every camera played by a simulated one (and no
    network discovery), so a site can be rehearsed on any machine."""
    hub = _load_hub(path, data_dir=data_dir)
    try:
        hub.setup()
    except ConfigInvalid:
        return hub  # cmd_demo reports the errors
    patterns = ["testsrc2", "smptebars", "rgbtestsrc", "mandelbrot", "testsrc", "yuvtestsrc"]
    data = dict(hub.config.data)
    cameras = []
    for index, camera in enumerate(data.get("cameras", [])):
        stand_in = dict(camera)
        stand_in["driver"] = "simcam"
        stand_in["options"] = {
            "pattern": patterns[index % len(patterns)],
            "width": 320,
            "height": 180,
            "fps": 5,
        }
        stand_in.pop("credentials", None)
        cameras.append(_plain_camera(stand_in))
    hub_section = dict(data["hub"])
    web = dict(hub_section.get("web", {}))
    web["host"] = "127.0.0.1"
    if port is not None:
        web["port"] = port
    hub_section["web"] = web
    hub_section.pop("data_dir", None)
    simulated = {
        "hub": hub_section,
        "plugins": data["plugins"],
        "cameras": cameras,
        "discovery": [],
    }
    out.emit(
        f"site {path}: {plural(len(cameras), 'camera')} played by simulated cameras",
        event="info",
        cameras=len(cameras),
    )
    return Hub(simulated, source=f"<simulated {path.name}>", data_dir=data_dir)


def _plain_camera(camera: dict[str, Any]) -> dict[str, Any]:
    """A validated camera back in site-file form (durations in seconds, dates as text)."""
    out = {k: v for k, v in camera.items() if v not in (None, [], {}) or k == "options"}
    if "authorization" in out:
        out["authorization"] = {
            k: str(v) if k in ("issued", "expires") else v for k, v in out["authorization"].items()
        }
    return out


def cmd_tokens(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    require_data(hub, writes=args.tokens_command != "list")
    return asyncio.run(_tokens(hub, args, out))


async def _tokens(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    await hub.store.open()
    try:
        if args.tokens_command == "create":
            secret = new_secret()
            try:
                await hub.store.create_token(args.name, args.role, hash_secret(secret))
            except StoreError as err:
                raise CliError(str(err), EXIT_INVALID) from None
            await hub.store.audit("cli", "token.create", args.name, role=args.role)
            out.document(
                {"name": args.name, "role": args.role, "token": secret},
                f"token {args.name} ({args.role}) created; it is shown only once:\n{secret}",
            )
        elif args.tokens_command == "list":
            tokens = await hub.store.list_tokens()
            rows = [
                (t["name"], t["role"], "revoked" if t["revoked_at"] else "active") for t in tokens
            ]
            out.document(
                {"tokens": tokens},
                table(rows, ("NAME", "ROLE", "STATE")) if rows else "no tokens",
            )
        else:
            if not await hub.store.revoke_token(args.name):
                raise CliError(f"no active token named {args.name!r}", EXIT_INVALID)
            await hub.store.audit("cli", "token.revoke", args.name)
            out.document({"revoked": args.name}, f"token {args.name} revoked")
    finally:
        await hub.store.close()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
