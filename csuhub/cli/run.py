"""``csuhub run`` and ``csuhub demo``: a hub in the foreground, one line per event."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from csuhub import __version__
from csuhub.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    Output,
    add_json,
    load_hub,
    open_store,
    plural,
    report_invalid,
)
from csuhub.cli.demolines import describe as describe_lines
from csuhub.cli.demolines import kiosk_token
from csuhub.cli.demolines import prepare as prepare_lines
from csuhub.config import ConfigInvalid
from csuhub.config.yaml_loader import loads
from csuhub.datadir import default_data_dir
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
from csuhub.hub import Hub
from csuhub.plugins import PluginState
from csuhub.runner import Runner
from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal

#: The test patterns simulated cameras cycle through.
PATTERNS = ["testsrc2", "smptebars", "rgbtestsrc", "mandelbrot", "testsrc", "yuvtestsrc"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the hub on a site file")
    run.add_argument("-c", "--config", required=True, type=Path, help="site YAML file")
    run.add_argument("--data", type=Path, help="data directory (overrides hub.data_dir)")
    add_json(run)

    demo = sub.add_parser("demo", help="run a demo hub with simulated cameras")
    demo.add_argument(
        "--data", type=Path, help=f"data directory (default {default_data_dir('demo')})"
    )
    demo.add_argument("--port", type=int, help="web port (default 8480; 0 picks a free one)")
    demo.add_argument("--cameras", type=int, help="number of simulated cameras (default 4)")
    demo.add_argument(
        "--site", type=Path, help="rehearse this site file, its cameras played by simulated ones"
    )
    add_json(demo)


def cmd_run(args: argparse.Namespace, out: Output) -> int:
    try:
        hub = load_hub(args.config, data_dir=args.data)
        config = hub.setup()
    except ConfigInvalid as err:
        report_invalid(out, err)
        return EXIT_INVALID
    for warning in config.warnings:
        out.emit(str(warning), event="config_warning", **warning.as_dict())
    return run_hub(hub, out)


def cmd_demo(args: argparse.Namespace, out: Output) -> int:
    data_dir = args.data or default_data_dir("demo")
    if args.site is not None:
        hub = _simulated_site(args.site, data_dir, args.port, out)
    else:
        raw = _demo_raw(args.cameras, args.port)
        prepare_lines(raw, data_dir, args.port)
        hub = Hub(raw, source="<demo>", data_dir=data_dir)
    try:
        hub.setup()
    except ConfigInvalid as err:
        report_invalid(out, err)
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
    kiosk = asyncio.run(_first_admin(hub, out))
    return run_hub(
        hub, out, banner=["press Ctrl+C to stop"], lines=lambda h: describe_lines(h, kiosk)
    )


#: the person account the demo makes on its first start
DEMO_ADMIN = "admin"


async def _first_admin(hub: Hub, out: Output) -> str | None:
    """On a data directory with no person yet, an admin with a generated
    password, printed here once (to the console, never to a log): later starts
    find the account and print nothing. Answers the kiosk's fresh wall token
    when the demo has a wall."""
    walls = hub.config.settings.walls
    async with open_store(hub) as store:
        kiosk = await kiosk_token(store, walls[0].id) if walls else None
        if await store.users.people():
            return kiosk
        added = await Accounts(store).add(
            system_principal("hub"), DEMO_ADMIN, roles=["admin"], scope=["*"]
        )
    out.emit(
        f"first start: log in to the panel as {DEMO_ADMIN} with password {added.generated} "
        "(shown only this once; change it with csuhub users passwd)",
        event="first_admin",
        user=DEMO_ADMIN,
        password=added.generated,
    )
    return kiosk


def run_hub(
    hub: Hub,
    out: Output,
    banner: list[str] | None = None,
    lines: Callable[[Hub], list[tuple[str, dict[str, Any]]]] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, printing what an operator watching the console
    needs: each event worth a line, and once started, retention and failed plugins."""

    def on_event(event: Event) -> None:
        text = describe(event)
        if text is not None:
            out.emit(text, **event.as_dict())

    hub.bus.listen(Event, on_event)

    def started(h: Hub) -> None:
        for line in banner or []:
            out.emit(line, event="info", message=line)
        for text, data in lines(h) if lines is not None else []:
            out.emit(text, **{"event": "call_line", **data})
        cap, law = h.retention.cap()
        default = h.retention.settings.default
        policies = ", ".join(name for name, _ in h.retention.policies) or "none"
        out.emit(
            f"retention: {default / 86400:g} days by default, legal maximum {cap / 86400:g} "
            f"days ({law}); policies: {policies}; sweep every "
            f"{h.retention.settings.interval:g}s "
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
        return await Runner(hub).run(on_started=started)

    try:
        reason = asyncio.run(main())
    except ConfigInvalid as err:
        report_invalid(out, err)
        return EXIT_INVALID
    except OSError as err:
        raise CliError(str(err), EXIT_INVALID) from None
    out.emit(f"hub stopped ({reason or 'done'})", event="hub_stopped", reason=reason)
    return EXIT_OK


def describe(event: Event) -> str | None:
    """An event as one console line; ``None`` for the ones not worth a line."""
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


def _demo_raw(cameras: int | None, port: int | None) -> Any:
    """The embedded demo site, with ``--cameras`` simulated cameras and ``--port``."""
    text = resources.files("csuhub").joinpath("defaults/demo.yaml").read_text("utf-8")
    raw = loads(text, "<demo>")
    if cameras is not None:
        if cameras < 0 or cameras > 64:
            raise CliError("--cameras must be between 0 and 64")
        raw["cameras"] = [
            {
                "id": f"cam-{i:02d}",
                "name": f"Caméra simulée {i}",
                "driver": "simcam",
                "options": {"pattern": PATTERNS[(i - 1) % len(PATTERNS)]},
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


def _simulated_site(path: Path, data_dir: Path, port: int | None, out: Output) -> Hub:
    """A real site file with every camera played by a simulated one (and no
    network discovery), so a site can be rehearsed on any machine."""
    hub = load_hub(path, data_dir=data_dir)
    try:
        hub.setup()
    except ConfigInvalid:
        return hub  # cmd_demo reports the errors
    data = dict(hub.config.data)
    cameras = []
    for index, camera in enumerate(data.get("cameras", [])):
        stand_in = dict(camera)
        stand_in["driver"] = "simcam"
        stand_in["options"] = {
            "pattern": PATTERNS[index % len(PATTERNS)],
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


HANDLERS = {"run": cmd_run, "demo": cmd_demo}
