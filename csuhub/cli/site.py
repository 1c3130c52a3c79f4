"""``csuhub check``, ``csuhub reload`` and ``csuhub plugins``: the site file, before and
while a hub runs on it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from csuhub.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    Output,
    add_json,
    load_hub,
    plural,
    report_invalid,
    signal_hub,
)
from csuhub.config import ConfigInvalid
from csuhub.hub import Hub


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help="validate a site file and report every error")
    check.add_argument("config", type=Path, nargs="?", help="site YAML file")
    check.add_argument("-c", "--config", dest="config_opt", type=Path, help=argparse.SUPPRESS)
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    add_json(check)

    reload = sub.add_parser(
        "reload", help="validate the site file, then make the running hub apply it"
    )
    reload.add_argument("-c", "--config", required=True, type=Path, help="site YAML file")
    reload.add_argument("--data", type=Path, help="data directory (overrides hub.data_dir)")
    reload.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the hub")
    add_json(reload)

    plugins = sub.add_parser("plugins", help="list plugins, their hooks and state")
    plugins.add_argument("-c", "--config", type=Path, help="honour this site's plugins.disabled")
    add_json(plugins)


def cmd_check(args: argparse.Namespace, out: Output) -> int:
    path = args.config or args.config_opt
    if path is None:
        raise CliError("check needs a site file: csuhub check site.yaml")
    try:
        hub = load_hub(path, web=False, strict=args.strict)
        config = hub.setup()
        # what `run` would refuse: a retention policy that validates but cannot be built
        hub.retention.build(config)
    except ConfigInvalid as err:
        report_invalid(out, err)
        return EXIT_INVALID
    cameras = len(config.section("cameras", []))
    if not out.as_json:
        for warning in config.warnings:
            out.note(str(warning))
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
            hub = load_hub(args.config, web=False)
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


def cmd_reload(args: argparse.Namespace, out: Output) -> int:
    """Validate here first; only a valid file is sent to the running hub (SIGHUP)."""
    try:
        hub = load_hub(args.config, data_dir=args.data, web=False)
        config = hub.setup()  # builds the managers
        hub.retention.build(config)
    except ConfigInvalid as err:
        report_invalid(out, err)
        out.note("not reloaded: the running hub keeps its configuration")
        return EXIT_INVALID
    status = hub.data_dir / "reload.json"
    before = _reload_generation(status)  # read first: the hub may answer at once
    pid = signal_hub(hub.data_dir)
    if pid is None:  # none, or another user's hub: not ours to signal
        raise CliError(f"no hub is running on {hub.data_dir}", EXIT_INVALID)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _reload_generation(status) != before:
            report = json.loads(status.read_text())
            break
    else:
        raise CliError(f"the hub (pid {pid}) did not report within {args.timeout:g}s", EXIT_INVALID)
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


HANDLERS = {"check": cmd_check, "reload": cmd_reload, "plugins": cmd_plugins}
