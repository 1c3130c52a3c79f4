"""``csuhub blueprints list|show|new``: the admin's blueprint tooling."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from csuhub.blueprint.loader import BlueprintLoader, BlueprintNotFound
from csuhub.blueprint.models import DOMAINS, Blueprint, BlueprintError
from csuhub.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Output,
    add_json,
    plural,
)
from csuhub.config.yaml_loader import LoadContext, loads

#: A minimal, valid body per domain, for ``blueprints new``.
SCAFFOLD_BODIES: dict[str, str] = {
    "site": """\
hub:
  name: !input site_name
  timezone: Europe/Paris
retention:
  default: !input retention
""",
    "camera": """\
id: !input camera_id
name: !input camera_name
driver: rtsp
options:
  url: !input stream_url
location: !input location
authorization:
  reference: !input authorization_reference
  issued: !input authorization_issued
  expires: !input authorization_expires
""",
    "wall": """\
id: !input wall_id
name: !input wall_name
screens:
  - id: main
    layout: grid
    cameras: !input cameras
""",
    "retention": """\
default: !input retention
policies:
  - policy: max_age
""",
    "recording": """\
backend: ffmpeg
segment: !input segment
""",
    "call_line": """\
id: !input line_id
type: webhook
options:
  secret: !input shared_secret
""",
    "discovery": """\
source: onvif
interval: !input interval
""",
}

SCAFFOLD_INPUTS: dict[str, str] = {
    "site": """\
    site_name:
      name: Site name
      selector: {text: {}}
    retention:
      name: Retention period
      default: 14d
      selector: {duration: {min: 1h, max: 30d}}
""",
    "camera": """\
    camera_id:
      name: Camera id
      description: Lowercase identifier, unique in the site
      selector: {text: {}}
    camera_name:
      name: Camera name
      selector: {text: {}}
    stream_url:
      name: Stream URL
      selector: {text: {}}
    location:
      name: Location
      selector: {location: {}}
    authorization_reference:
      name: Prefectoral authorisation reference
      selector: {text: {}}
    authorization_issued:
      name: Authorisation issued on
      selector: {date: {}}
    authorization_expires:
      name: Authorisation expires on
      selector: {date: {}}
""",
    "wall": """\
    wall_id:
      name: Wall id
      selector: {text: {}}
    wall_name:
      name: Wall name
      default: Mur d'images
      selector: {text: {}}
    cameras:
      name: Cameras
      selector: {cameras: {min: 1}}
""",
    "retention": """\
    retention:
      name: Retention period
      default: 14d
      selector: {duration: {min: 1h, max: 30d}}
""",
    "recording": """\
    segment:
      name: Segment length
      default: 60s
      selector: {duration: {min: 2s, max: 15m}}
""",
    "call_line": """\
    line_id:
      name: Line id
      selector: {text: {}}
    shared_secret:
      name: Shared secret
      description: "HMAC key shared with the CAD; use !secret in the instance"
      selector: {text: {}}
""",
    "discovery": """\
    interval:
      name: Rescan interval
      default: 5m
      selector: {duration: {min: 30s}}
""",
}


def scaffold(domain: str, name: str) -> str:
    """A blueprint that validates as written, for an admin to fill in."""
    title = name.replace('"', "'")
    return (
        "blueprint:\n"
        f'  name: "{title}"\n'
        f"  domain: {domain}\n"
        "  description: >-\n"
        "    Describe what this blueprint sets up and when to use it.\n"
        "  author: \n"
        "  min_version: '0.1'\n"
        "  input:\n"
        f"{SCAFFOLD_INPUTS[domain]}\n"
        f"{SCAFFOLD_BODIES[domain]}"
    )


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("blueprints", help="list, show and scaffold blueprints")
    actions = parser.add_subparsers(dest="blueprints_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every blueprint available to a site")
    show = actions.add_parser("show", help="a blueprint's metadata and inputs")
    show.add_argument("name", help="path (camera/onvif_camera.yaml) or name")
    new = actions.add_parser("new", help="print or write a scaffold for a domain")
    new.add_argument("domain", choices=DOMAINS)
    new.add_argument("--name", default="My blueprint", help="the blueprint's name")
    new.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    for p in (listing, show):
        p.add_argument("-c", "--config", type=Path, help="include this site's blueprints/ folder")
    for p in (listing, show, new):
        add_json(p)


def cmd_blueprints(args: argparse.Namespace, out: Output) -> int:
    if args.blueprints_command == "new":
        text = scaffold(args.domain, args.name)
        Blueprint(_parse(text), "<scaffold>")  # a scaffold that does not validate is a bug
        if args.output is None:
            if out.as_json:
                out.document({"domain": args.domain, "yaml": text}, "")
            else:
                out.verbatim(text)
            return EXIT_OK
        if args.output.exists() and not args.force:
            raise CliError(f"{args.output} exists; use --force to overwrite", EXIT_USAGE)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        out.document({"written": str(args.output)}, f"wrote {args.output}")
        return EXIT_OK

    loader = BlueprintLoader.for_site(args.config)
    entries = loader.list()
    if args.blueprints_command == "list":
        rows, lines = [], []
        for ref, path, item in entries:
            if isinstance(item, BlueprintError):
                rows.append(
                    {
                        "ref": ref,
                        "path": str(path),
                        "valid": False,
                        "errors": [str(i) for i in item.issues],
                    }
                )
                lines.append(f"✗ {ref}: invalid ({plural(len(item.issues), 'error')})")
                lines.extend(f"    {i}" for i in item.issues)
            else:
                rows.append({"ref": ref, "valid": True, **item.summary()})
                lines.append(f"{ref:<40} {item.domain:<10} {item.name}")
        out.document({"blueprints": rows}, "\n".join(lines) or "no blueprints")
        return EXIT_OK if all(r["valid"] for r in rows) else EXIT_INVALID

    try:
        blueprint = loader.load(args.name)
    except BlueprintNotFound:
        matches = [b for _, _, b in entries if isinstance(b, Blueprint) and b.name == args.name]
        if not matches:
            raise CliError(
                f"no blueprint {args.name!r}; see `csuhub blueprints list`", EXIT_INVALID
            ) from None
        blueprint = matches[0]
    except BlueprintError as err:
        for issue in err.issues:
            out.note(str(issue))
        return EXIT_INVALID
    out.document(blueprint.summary(), _describe(blueprint))
    return EXIT_OK


def _describe(blueprint: Blueprint) -> str:
    lines = [f"{blueprint.name}  [{blueprint.domain}]", f"  file: {blueprint.path}"]
    if blueprint.description:
        lines.append(f"  {blueprint.description.strip()}")
    if blueprint.author:
        lines.append(f"  author: {blueprint.author}")
    lines.append("  inputs:")
    for spec in blueprint.inputs.values():
        need = "required" if spec.required else f"default {spec.as_dict()['default']!r}"
        section = f" [{spec.section}]" if spec.section else ""
        lines.append(f"    {spec.key}{section}: {spec.selector.describe()}, {need} — {spec.name}")
        if spec.description:
            lines.append(f"        {spec.description.strip()}")
    return "\n".join(lines)


def _parse(text: str) -> Any:
    return loads(text, "<scaffold>", LoadContext(allow_input=True))


HANDLERS = {"blueprints": cmd_blueprints}
