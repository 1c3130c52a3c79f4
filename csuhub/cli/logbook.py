"""``csuhub logbook show|note|export``: the centre's main courante from the console.

All three work on the data directory directly, beside a running hub (the
logbook is the audit chain; SQLite serialises a note with the hub's own
writes). ``note`` writes as ``--user`` (default ``cli``), the machine's
administrator at the console, as the other commands that act do. Caller
numbers are masked unless ``--show-callers``: the console is in the same room
as the wall.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
    table,
)
from csuhub.hub import Hub
from csuhub.logbook.day import DayError, parse_day, today
from csuhub.logbook.journal import Logbook, NoteError, check_text, read_day, write_note
from csuhub.logbook.render import FORMATS, to_csv, to_html
from csuhub.logbook.sentences import LANGS
from csuhub.security.context import acting


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    book = sub.add_parser("logbook", help="the logbook (main courante): show, note, export a day")
    actions = book.add_subparsers(dest="logbook_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="a day's lines (default: today in the hub's zone)")
    note = actions.add_parser("note", help="write a note, or a correction of a line")
    note.add_argument("text", help="the note (quote it)")
    note.add_argument("--corrects", type=int, metavar="SEQ", help="the seq of the line corrected")
    note.add_argument("--user", default="cli", help="who writes (in the audit trail)")
    export = actions.add_parser("export", help="a day as HTML (printable), CSV or JSON")
    export.add_argument("--format", choices=FORMATS, required=True)
    export.add_argument("-o", "--output", type=Path, help="file (default: standard output)")
    export.add_argument("--force", action="store_true", help="replace an existing file")
    for p, required in ((show, False), (export, True)):
        p.add_argument("--day", required=required, metavar="YYYY-MM-DD", help="local calendar day")
        p.add_argument("--lang", choices=LANGS, default="fr", help="the sentences' language")
        p.add_argument(
            "--show-callers", action="store_true", help="caller numbers unmasked (else masked)"
        )
    for p in (show, note, export):
        add_hub_options(p)


def cmd_logbook(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    require_data(hub)
    if args.logbook_command == "note":
        return asyncio.run(_note(hub, args, out))
    return asyncio.run(_show(hub, args, out))


def _tz(hub: Hub) -> str:
    return str(hub.config.settings.hub.timezone)


async def _read(hub: Hub, args: argparse.Namespace) -> Logbook:
    tz = _tz(hub)
    try:
        day = parse_day(args.day) if args.day else today(tz)
    except DayError as err:
        raise CliError(f"--day: {err}", EXIT_USAGE) from None
    async with open_store(hub) as store:
        name = await store.audit_trail.last_target("hub.start") or hub.name
        return await read_day(
            store.audit_trail, name, day, tz, lang=args.lang, show_callers=args.show_callers
        )


async def _show(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    if args.logbook_command == "export" and args.output is not None:
        _check_output(args.output, args.force)  # before any work
    book = await _read(hub, args)
    if args.logbook_command == "export":
        text = _render(book, args.format)
        if args.output is None:
            out.verbatim(text)
        else:
            await asyncio.to_thread(_write, args.output, text, args.force)
            out.note(f"logbook of {book.day.isoformat()}: {len(book.lines)} lines in {args.output}")
        return EXIT_OK
    out.document(book.as_dict(), _human(book))
    return EXIT_OK


def _render(book: Logbook, fmt: str) -> str:
    if fmt == "html":
        return to_html(book, reader="cli")
    if fmt == "csv":
        return to_csv(book)
    return json.dumps(book.as_dict(), ensure_ascii=False, indent=2, default=str) + "\n"


def _human(book: Logbook) -> str:
    head = f"logbook of {book.day.isoformat()} ({book.timezone}), {book.hub}"
    if not book.lines:
        return f"{head}: no line"
    rows: list[list[object]] = []
    for line in book.lines:
        what = " ".join(str(line["what"]).split())
        rows.append(
            [line["seq"], line["time"][11:19], line["who"], what, line["target"], line["outcome"]]
        )
        for fix in line["corrections"]:
            said = " ".join(str(fix["text"]).split())
            rows.append(["", "", "", f"  -> corrected by {fix['seq']}: {said}", None, ""])
    header = ["seq", "time", "who", "what", "target", "outcome"]
    return head + "\n" + table(rows, header, right=[0])


async def _note(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    try:
        text = check_text(args.text)
    except NoteError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    if args.corrects is not None and args.corrects < 1:
        raise CliError("--corrects: the seq of a logbook line", EXIT_USAGE)
    async with open_store(hub) as store:
        try:
            seq = await write_note(store.audit_trail, acting(args.user), text, args.corrects)
        except NoteError as err:
            raise CliError(str(err), EXIT_USAGE) from None
    what = "correction" if args.corrects is not None else "note"
    out.document({"seq": seq, "corrects": args.corrects}, f"{what} written as entry {seq}")
    return EXIT_OK


def _check_output(path: Path, force: bool) -> None:
    """A file the export may write: its folder exists, it is no folder, and it
    is replaced only with ``--force`` (a previous shift's handover, say)."""
    if not path.name or path.name in (".", ".."):
        raise CliError(f"{path}: not a file name", EXIT_USAGE)
    if path.is_dir():
        raise CliError(f"{path}: is a directory", EXIT_USAGE)
    if not path.parent.is_dir():
        raise CliError(f"{path.parent}: no such directory", EXIT_USAGE)
    if (path.exists() or path.is_symlink()) and not force:
        raise CliError(f"{path}: exists; pass --force to replace it", EXIT_USAGE)


def _write(path: Path, text: str, force: bool) -> None:
    """Whole or not at all: with ``--force``, a temporary file beside it renamed
    over it; without, the name created exclusively (taken meanwhile: refused),
    and removed again if the write fails."""
    _check_output(path, force)
    if not force:
        try:
            with open(path, "x", encoding="utf-8", newline="") as handle:
                try:
                    handle.write(text)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
        except FileExistsError:
            raise CliError(f"{path}: exists; pass --force to replace it", EXIT_USAGE) from None
        except OSError as err:
            raise CliError(f"{path}: cannot write: {err.strerror}", EXIT_USAGE) from None
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as err:
        raise CliError(f"{path}: cannot write: {err.strerror}", EXIT_USAGE) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


HANDLERS = {"logbook": cmd_logbook}
