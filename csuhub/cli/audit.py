"""``csuhub audit verify|anchor|export``: the audit chain checked and anchored, and
the audit handed over.

All run on the data directory directly, beside a running hub; verify and
export only read, anchor only adds a file under ``audit/anchors``. Verify reads
one consistent snapshot of the table (WAL), after the anchor files, so an
anchor written meanwhile always names an entry the snapshot holds.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any, TextIO

from csuhub.audit.anchors import AnchorError, anchored, read_anchors, write_anchor
from csuhub.audit.export import FORMATS, write_csv, write_json
from csuhub.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    TIME_FROM,
    TIME_TO,
    CliError,
    Output,
    add_hub_options,
    hub_for,
    open_store,
    require_data,
    when,
)
from csuhub.hub import Hub
from csuhub.store.audit import iter_entries, verify


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="verify the audit chain; export the audit")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "verify", help="recompute the hash chain; name the first broken entry (exit 1)"
    )
    anchor = actions.add_parser(
        "anchor", help="write the chain head to a new write-once anchor file now"
    )
    export = actions.add_parser("export", help="entries of a period, CSV or JSON, with hashes")
    export.add_argument("--from", dest="start", required=True, metavar="T", help=TIME_FROM)
    export.add_argument("--to", dest="end", required=True, metavar="T", help=TIME_TO)
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    for p in (check, anchor, export):
        add_hub_options(p)


def cmd_audit(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    require_data(hub)
    if args.audit_command == "verify":
        return asyncio.run(_verify(hub, out))
    if args.audit_command == "anchor":
        return asyncio.run(_anchor(hub, out))
    return asyncio.run(_export(hub, args, out))


async def _anchor(hub: Hub, out: Output) -> int:
    """What the hub does daily, by hand or from cron (a hub not running, say)."""
    async with open_store(hub) as store:
        head = await store.audit_trail.head()
    if head is None:
        out.document({"anchored": None}, "no chained entry to anchor yet")
        return EXIT_OK
    try:
        latest = read_anchors(hub.data_dir)
    except AnchorError as err:
        raise CliError(str(err), EXIT_INVALID) from None
    if latest and latest[-1].id == head[0]:
        out.document({"anchored": None, "head": head[0]}, f"entry {head[0]} is anchored already")
        return EXIT_OK
    path = await asyncio.to_thread(write_anchor, hub.data_dir, head)
    out.document(
        {"anchored": head[0], "hash": head[1], "file": str(path)},
        f"anchored entry {head[0]} in {path}",
    )
    return EXIT_OK


async def _verify(hub: Hub, out: Output) -> int:
    try:  # the anchors first: any entry they name is already committed
        anchors = anchored(read_anchors(hub.data_dir))
    except AnchorError as err:
        out.document(
            {"ok": False, "broken": {"id": None, "kind": "anchor", "message": str(err)}},
            f"audit chain NOT verified: {err}",
        )
        return EXIT_INVALID
    async with open_store(hub) as store:
        total = int(await store.call(_count)) or 1

        def progress(done: int) -> None:
            out.progress("verifying the audit chain", done / total)

        report = await store.call(verify, anchors, progress)
    data: dict[str, Any] = report.as_dict()
    if report.ok:
        head = f"entry {report.head_id}" if report.head_id is not None else "no entry"
        human = (
            f"audit chain intact: {report.entries} entries, head {head}, "
            f"{report.anchors_checked} of {len(anchors)} anchors matched"
        )
    else:
        assert report.broken is not None
        human = (
            f"audit chain BROKEN at entry {report.broken.id} ({report.broken.kind}): "
            f"{report.broken.message}; {report.entries} entries verified before it"
        )
    for note in report.notes:
        human += f"\nnote: {note}"
    out.document(data, human)
    return EXIT_OK if report.ok else EXIT_INVALID


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])


async def _export(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    start = when(hub, args.start, 0.0)
    end = when(hub, args.end, 0.0)
    if end <= start:
        raise CliError("--to must be after --from", EXIT_USAGE)
    stream = sys.stdout if args.out is None else await asyncio.to_thread(_create, args.out)
    try:
        async with open_store(hub) as store:
            count = await store.call(_write, args.format, stream, start, end)
    finally:
        if stream is not sys.stdout:
            stream.close()
    if args.out is not None:
        out.note(f"{count} audit entries written to {args.out}")
    return EXIT_OK


def _create(path: Path) -> TextIO:
    """A new file: an export never overwrites one (a previous hand-over, say)."""
    try:
        return open(path, "x", encoding="utf-8", newline="")
    except FileExistsError:
        raise CliError(f"{path}: exists; an export never overwrites", EXIT_USAGE) from None
    except OSError as err:
        raise CliError(f"{path}: cannot write: {err.strerror}", EXIT_USAGE) from None


def _write(conn: sqlite3.Connection, fmt: str, stream: TextIO, start: float, end: float) -> int:
    """On the store's thread, as the rows come: never the whole period in memory."""
    rows = iter_entries(conn, start, end)
    if fmt == "csv":
        return write_csv(rows, stream)
    return write_json(rows, stream, start, end)


HANDLERS = {"audit": cmd_audit}
