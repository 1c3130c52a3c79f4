"""``csuhub transparency export DIR``: the public transparency page as static
files for the city's website.

It writes ``index.html`` (French), ``en.html`` (English) and their style sheets,
scripts and Leaflet under ``assets/``, all with relative paths, so the folder
opens from ``file://`` and works on any web server without the hub. What the
pages show is what ``/transparence`` shows (``csuhub.panel.transparency.collect``):
nothing else can leak through the export.

The folder is checked before anything is written: an existing file is refused,
a non-empty folder too unless ``--force`` (then only the bundle's own files
are replaced; nothing else in it is deleted), and no file is written through a
symbolic link or outside the folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from csuhub.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Output,
    add_hub_options,
    hub_for,
    open_store,
    require_data,
)
from csuhub.hub import Hub
from csuhub.panel.render import STATIC_ROOT
from csuhub.panel.transparency import (
    EXPORT_ASSETS,
    LEAFLET_MODULE,
    LEAFLET_SCRIPT,
    PAGES,
    classic_leaflet,
    collect,
    render_static,
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("transparency", help="the public transparency page: static export")
    actions = group.add_subparsers(dest="transparency_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write the page and its files into DIR")
    export.add_argument(
        "dir", type=Path, metavar="DIR", help="the folder to write (made if absent)"
    )
    export.add_argument("--force", action="store_true", help="write into a non-empty folder")
    add_hub_options(export)


def cmd_transparency(args: argparse.Namespace, out: Output) -> int:
    root = check_target(args.dir, force=args.force)
    hub = hub_for(args)
    require_data(hub)
    files = asyncio.run(_export(hub, root, out))
    out.emit(
        f"wrote {len(files)} files into {root}; open {root / PAGES['fr']}",
        event="done",
        dir=str(root),
        files=files,
    )
    return EXIT_OK


def check_target(path: Path, *, force: bool) -> Path:
    """The folder to write, absolute; refused when it is a file, a link, or not empty."""
    if path.is_symlink():
        raise CliError(f"{path}: is a symbolic link; give the folder itself", EXIT_USAGE)
    if path.exists() and not path.is_dir():
        raise CliError(f"{path}: exists and is not a folder", EXIT_USAGE)
    if path.is_dir() and any(path.iterdir()) and not force:
        raise CliError(f"{path}: not empty (use --force to write into it)", EXIT_USAGE)
    if not path.exists() and not path.parent.is_dir():
        raise CliError(f"{path.parent}: no such folder", EXIT_USAGE)
    return path.resolve()


def _write(root: Path, name: str, data: bytes) -> None:
    """``data`` into ``root/name`` atomically, never through a link or outside ``root``."""
    target = root / name
    for parent in reversed(target.relative_to(root).parents):
        folder = root / parent
        if folder.is_symlink():
            raise CliError(f"{folder}: is a symbolic link; refusing to write through it")
        folder.mkdir(exist_ok=True)
    if target.is_symlink() or not target.resolve().is_relative_to(root):
        raise CliError(f"{target}: is a symbolic link; refusing to write through it")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".csuhub-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def _export(hub: Hub, root: Path, out: Output) -> list[str]:
    async with open_store(hub):
        hub.retention.configure()
        values = await collect(hub)
    zone = hub.config.settings.hub.zone
    origins = hub.config.settings.panel.tile_origins
    work: list[tuple[str, bytes]] = [
        (page, render_static(values, lang, zone, origins).encode()) for lang, page in PAGES.items()
    ]
    leaflet = (STATIC_ROOT / LEAFLET_MODULE).read_text(encoding="utf-8")
    work.append((f"assets/{LEAFLET_SCRIPT}", classic_leaflet(leaflet).encode()))
    work += [(f"assets/{name}", (STATIC_ROOT / name).read_bytes()) for name in EXPORT_ASSETS]
    written = []
    for index, (name, data) in enumerate(work, 1):
        _write(root, name, data)
        written.append(name)
        out.progress("writing the transparency page", index / len(work))
    return written


HANDLERS = {"transparency": cmd_transparency}
