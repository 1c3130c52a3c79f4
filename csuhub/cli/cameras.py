"""``csuhub discover`` and ``csuhub cameras list|show|adopt|forget|ptz``.

These work with or without a running hub: they read and write the register
in the store (SQLite in WAL mode takes both), audit what they change, and
signal a hub running on the same data directory (SIGHUP) so it follows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from csuhub.cameras.model import AdoptionError, CameraEntry
from csuhub.cameras.ptz import ACTIONS as PTZ_ACTIONS
from csuhub.cameras.ptz import PtzMoves, PtzRequestError, has_ptz
from csuhub.cameras.ptz import validate as validate_ptz
from csuhub.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    Output,
    add_hub_options,
    add_json,
    hub_for,
    open_store,
    plural,
    require_data,
    signal_hub,
    table,
)
from csuhub.hub import Hub
from csuhub.security.context import acting

_LOGGER = logging.getLogger(__name__)

ACTOR = "cli"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    discover = sub.add_parser("discover", help="find cameras on the network, as they answer")
    discover.add_argument("--timeout", type=float, default=5.0, help="seconds to listen (5)")
    discover.add_argument("--source", default="onvif", help="discovery source (onvif)")
    discover.add_argument("--interface", help="local IPv4 address to probe from")
    discover.add_argument("-c", "--config", type=Path, help="site file (for plugins)")
    add_json(discover)

    cameras = sub.add_parser("cameras", help="the camera register")
    actions = cameras.add_subparsers(dest="cameras_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every camera with its state and authorisation")
    show = actions.add_parser("show", help="one camera in full")
    show.add_argument("camera_id")
    adopt = actions.add_parser("adopt", help="adopt a discovered camera into the register")
    adopt.add_argument("camera_id")
    adopt.add_argument("--reference", required=True, help="prefectoral authorisation reference")
    adopt.add_argument("--expires", required=True, help="authorisation expiry (YYYY-MM-DD)")
    adopt.add_argument("--issued", help="authorisation date (YYYY-MM-DD)")
    adopt.add_argument("--lat", required=True, type=float)
    adopt.add_argument("--lon", required=True, type=float)
    adopt.add_argument("--district", required=True)
    adopt.add_argument("--address")
    adopt.add_argument("--name")
    adopt.add_argument("--driver")
    adopt.add_argument("--username", help="camera user")
    adopt.add_argument("--password-secret", help="name of the password in secrets.yaml")
    adopt.add_argument("--reason", default="", help="why (recorded in the audit trail)")
    forget = actions.add_parser("forget", help="remove an adopted or discovered camera")
    forget.add_argument("camera_id")
    forget.add_argument("--reason", default="")
    ptz = actions.add_parser(
        "ptz",
        help="move a camera (a quick test); a move always ends: after --duration, "
        "and the command waits for the stop",
    )
    ptz.add_argument("camera_id")
    ptz.add_argument("action", choices=list(PTZ_ACTIONS))
    ptz.add_argument("--pan", type=float, help="-1..1: speed (move) or step (relative)")
    ptz.add_argument("--tilt", type=float, help="-1..1: speed (move) or step (relative)")
    ptz.add_argument("--zoom", type=float, help="-1..1 (move, relative), 0..1 (absolute)")
    ptz.add_argument("--duration", type=float, default=0.5, help="seconds to move (move; 0.5)")
    ptz.add_argument(
        "--preset", help="preset token (preset, remove_preset; set_preset: overwrite it)"
    )
    ptz.add_argument("--name", help="preset name (set_preset)")
    for p in (listing, show, adopt, forget, ptz):
        add_hub_options(p)


def cmd_discover(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    spec = hub.registry.discovery_sources.get(args.source)
    if spec is None:
        raise CliError(
            f"no discovery source {args.source!r}; available: "
            f"{', '.join(hub.registry.discovery_sources.names())}",
            EXIT_INVALID,
        )
    options: dict[str, Any] = {"interface": args.interface} if args.interface else {}
    try:
        source = spec.factory(hub, spec.config_schema(options))
    except Exception as err:
        raise CliError(f"cannot start {args.source}: {err}", EXIT_INVALID) from None

    async def run() -> int:
        start = time.monotonic()
        if not out.as_json:
            out.note(f"probing with {args.source} for {args.timeout:g}s...")
        count = 0
        async for camera in source.scan(args.timeout):
            count += 1
            elapsed = time.monotonic() - start
            driver = camera.driver or hub.driver_for(camera) or "?"
            out.emit(
                f"[{elapsed:5.2f}s] {camera.address:<15} {camera.name or '-':<30} "
                f"driver={driver} ref={camera.ref}",
                event="camera_found",
                elapsed_s=round(elapsed, 3),
                ref=camera.ref,
                address=camera.address,
                name=camera.name,
                driver=driver,
                info=camera.info,
            )
        out.emit(
            f"{plural(count, 'camera')} found in {args.timeout:g}s",
            event="scan_done",
            found=count,
            timeout_s=args.timeout,
        )
        return count

    try:
        asyncio.run(run())
    except Exception as err:
        # a plugin boundary: a source that cannot open its sockets (no such interface,
        # address in use) or fails mid-scan is reported in one line, never a traceback
        _LOGGER.debug("discovery source %s failed", args.source, exc_info=True)
        raise CliError(f"{args.source}: discovery failed: {err}", EXIT_INVALID) from None
    return EXIT_OK


def cmd_cameras(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    require_data(hub, writes=args.cameras_command not in ("list", "show"))

    async def run() -> int:
        async with open_store(hub):
            if args.cameras_command == "list":
                rows = await hub.store.list_cameras()
                cells = [
                    (
                        r.id,
                        r.state,
                        f"{r.authorization_ref or '-'} ({r.authorization_status})",
                        r.location.get("district", "-"),
                        r.name,
                    )
                    for r in rows
                ]
                header = ("ID", "STATE", "AUTHORISATION", "DISTRICT", "NAME")
                out.document(
                    {"cameras": [r.as_dict() for r in rows]},
                    table(cells, header) + f"\n{plural(len(rows), 'camera')}"
                    if rows
                    else "no cameras",
                )
                return EXIT_OK
            if args.cameras_command == "show":
                row = await hub.store.get_camera(args.camera_id)
                if row is None:
                    raise CliError(f"no camera {args.camera_id!r}", EXIT_INVALID)
                data = row.as_dict()
                human = "\n".join(
                    f"{k}: {v}" for k, v in data.items() if k != "device"
                ) + "\n" + _device_lines(data["device"])  # fmt: skip
                out.document(data, human)
                return EXIT_OK
            if args.cameras_command == "adopt":
                return await _adopt(hub, args, out)
            if args.cameras_command == "forget":
                try:
                    await hub.cameras.forget(args.camera_id, actor=ACTOR, reason=args.reason)
                except AdoptionError as err:
                    raise CliError(str(err), EXIT_INVALID) from None
                notified = signal_hub(hub.data_dir) is not None
                out.document(
                    {"forgotten": args.camera_id, "hub_notified": notified},
                    f"{args.camera_id} removed from the register",
                )
                return EXIT_OK
            return await _ptz(hub, args, out)

    return asyncio.run(run())


async def _adopt(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    request: dict[str, Any] = {
        "authorization": {"reference": args.reference, "expires": args.expires},
        "location": {"lat": args.lat, "lon": args.lon, "district": args.district},
        "reason": args.reason,
    }
    if args.issued:
        request["authorization"]["issued"] = args.issued
    if args.address:
        request["location"]["address"] = args.address
    for key in ("name", "driver"):
        if getattr(args, key):
            request[key] = getattr(args, key)
    options: dict[str, Any] = {}
    if args.username:
        options["username"] = args.username
    if args.password_secret:
        if hub.secret(args.password_secret) is None:
            raise CliError(
                f"no secret {args.password_secret!r} in the site's secrets.yaml", EXIT_INVALID
            )
        options["password_secret"] = args.password_secret
    request["options"] = options
    try:
        await hub.cameras.record_adoption(args.camera_id, request, actor=ACTOR)
    except AdoptionError as err:
        raise CliError(f"adoption refused: {err}", EXIT_INVALID) from None
    notified = signal_hub(hub.data_dir) is not None  # a running hub starts it now
    row = await hub.store.get_camera(args.camera_id)
    note = "; the running hub starts it now" if notified else "; it starts with the hub"
    out.document(
        {"adopted": row.as_dict() if row else None, "hub_notified": notified},
        f"{args.camera_id} adopted under authorisation {args.reference}{note}",
    )
    return EXIT_OK


async def _ptz(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    request: dict[str, Any] = {"action": args.action}
    for key in ("pan", "tilt", "zoom", "preset", "name"):
        if getattr(args, key) is not None:
            request[key] = getattr(args, key)
    if args.action == "move":
        request["duration"] = args.duration
    try:
        action, params = validate_ptz(request)
    except PtzRequestError as err:
        raise CliError(f"--{err.field}: {str(err).split(': ', 1)[-1]}", EXIT_INVALID) from None
    entry = _entry(hub, args.camera_id) or await _adopted_entry(hub, args.camera_id)
    if entry is None:
        raise CliError(f"no adopted camera {args.camera_id!r}", EXIT_INVALID)
    spec = hub.registry.camera_drivers.get(entry.driver)
    if spec is None:
        raise CliError(f"no camera driver {entry.driver!r}", EXIT_INVALID)
    driver = spec.factory(hub, entry.id, spec.config_schema(entry.options))
    if not has_ptz(driver):
        raise CliError(f"the {entry.driver} driver has no PTZ", EXIT_INVALID)
    moves = PtzMoves()
    who = acting(ACTOR)
    # audited before the camera moves, with its parameters; then how it ended
    started = await hub.store.audit_event(
        who, "camera.ptz", args.camera_id, outcome="started", action=action, **params
    )
    outcome, why = "failed", ""
    try:
        await driver.connect()
        result = await moves.run(entry.id, driver, action, params)
        await moves.wait(entry.id)  # a move is done when its stop has been sent
        outcome = "ok"
    except Exception as err:
        why = str(err)[:300] or type(err).__name__
        raise CliError(f"{args.camera_id}: {err}", EXIT_INVALID) from None
    finally:
        await moves.stop_all()
        await driver.close()
        extra = {"error": why} if why else {}
        await hub.store.audit_event(
            who, "camera.ptz", args.camera_id, outcome=outcome, ref=started, **extra
        )
    done = f"moved {params['duration']:g} s, stopped" if action == "move" else "done"
    out.document(
        {"ok": True, "action": action, "result": result},
        f"{args.camera_id}: {action} {done}" + (f": {result}" if result else ""),
    )
    return EXIT_OK


def _entry(hub: Hub, camera_id: str) -> CameraEntry | None:
    """A camera of the site file, as the hub would build it."""
    for camera in hub.config.section("cameras", []):
        if camera["id"] == camera_id:
            options = dict(camera.get("options", {}))
            if camera.get("credentials"):
                options["username"] = camera["credentials"]["username"]
                options["password"] = camera["credentials"].get("password", "")
            return CameraEntry(
                camera_id, camera.get("name") or camera_id, camera["driver"], options, "config"
            )
    return None


async def _adopted_entry(hub: Hub, camera_id: str) -> CameraEntry | None:
    """An adopted camera of the register, its password read from the site's secrets."""
    row = await hub.store.get_camera(camera_id)
    if row is None or row.origin != "adopted":
        return None
    options = dict(row.options)
    secret = options.pop("password_secret", None)
    if secret:
        options["password"] = hub.secret(secret) or ""
    return CameraEntry(row.id, row.name, row.driver, options, "adopted")


def _device_lines(device: dict[str, Any]) -> str:
    """What the camera said it is, as read at its last connection by the hub."""
    if not device:
        return "device: not read yet (the hub reads it when it connects to the camera)"
    lines = ["device:"]
    for key in ("manufacturer", "model", "firmware", "serial", "hardware", "mac"):
        if device.get(key):
            lines.append(f"  {key}: {device[key]}")
    if device.get("capabilities"):
        lines.append(f"  capabilities: {', '.join(map(str, device['capabilities']))}")
    for profile in device.get("profiles") or []:
        if not isinstance(profile, dict):
            continue
        size = f"{profile.get('width') or '?'}x{profile.get('height') or '?'}"
        lines.append(
            f"  profile {profile.get('token') or profile.get('name')}: "
            f"{profile.get('codec') or '?'} {size} {profile.get('fps') or '?'} fps"
            f"{' PTZ' if profile.get('ptz') else ''} {profile.get('stream_uri') or ''}".rstrip()
        )
    if device.get("read_at"):
        lines.append(
            f"  read at: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(device['read_at']))}"
        )
    return "\n".join(lines)


HANDLERS = {"discover": cmd_discover, "cameras": cmd_cameras}
