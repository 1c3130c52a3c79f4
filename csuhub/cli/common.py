"""What every ``csuhub`` command shares: exit codes, errors, output, finding the hub.

A command module imports from here and from nowhere else in the CLI, so the
command groups stay independent of each other. Exit codes (docs/cli.md):

  0  success (a hub stopped by SIGTERM/SIGINT stopped cleanly)
  1  invalid configuration, or the hub failed
  2  usage error, or a file that cannot be read
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from csuhub.config import ERROR, ConfigInvalid
from csuhub.datadir import default_data_dir, hub_pid
from csuhub.hub import Hub
from csuhub.store import DATABASE, Store
from csuhub.timeutil import TimeError, parse_time

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

#: Help for every --from/--to: the forms ``parse_time`` accepts.
TIME_FROM = (
    "start: ISO 8601 (2026-11-25T14:00, in the hub's time zone unless an offset is given) "
    "or epoch seconds"
)
TIME_TO = "end, in the same forms as --from; must be after it"
#: ``--data`` help of the commands that read a hub's footage or key.
DATA_HELP = "data directory (default: the running hub's; docs/cli.md)"


class CliError(Exception):
    """A one-line error for the user, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- output -------------------------------------------------------------------


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

    def verbatim(self, text: str) -> None:
        """A document in its own format (a CSV, a YAML scaffold), written as it is."""
        self.stream.write(text)
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line for the person at the console, on stderr: never part of the answer."""
        self.end_line()
        self.err.write(text + "\n")
        self.err.flush()

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


def size(n: float) -> str:
    """Bytes for a person: ``512 B``, ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


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


def report_invalid(out: Output, err: ConfigInvalid) -> None:
    """Every configuration issue, then a count (stderr); with ``--json`` one document."""
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
            out.note(str(issue))
        summary = plural(len(errors), "error")
        if warnings:
            summary += f", {plural(len(warnings), 'warning')}"
        out.note(summary)


# -- arguments ----------------------------------------------------------------


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_hub_options(
    parser: argparse.ArgumentParser,
    *,
    config_help: str = "site file",
    data_help: str = "data directory",
) -> None:
    """``-c``, ``--data`` and ``--json``: what a command acting on a hub's data takes."""
    parser.add_argument("-c", "--config", type=Path, help=config_help)
    parser.add_argument("--data", type=Path, help=data_help)
    add_json(parser)


def when(hub: Hub, value: str | None, default: float) -> float:
    """A ``--from``/``--to`` value in the hub's time zone; a bad one is a usage error."""
    if value is None:
        return default
    try:
        return parse_time(value, hub.config.hub["timezone"])
    except TimeError as err:
        raise CliError(str(err), EXIT_USAGE) from None


# -- the hub and its data -----------------------------------------------------


def load_hub(path: Path, **kwargs: Any) -> Hub:
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


def signal_hub(data_dir: Path) -> int | None:
    """SIGHUP the hub running on ``data_dir`` so it re-reads its site and register:
    its pid, or ``None`` when none runs there or it is not ours to signal."""
    pid = hub_pid(data_dir)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:  # gone since, or another user's hub
        return None
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
        hub = load_hub(config, data_dir=data, web=False)
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


@asynccontextmanager
async def open_store(hub: Hub) -> AsyncIterator[Store]:
    """The hub's store, open for one command and closed after it, also on an error."""
    await hub.store.open()
    try:
        yield hub.store
    finally:
        await hub.store.close()


def run_retention(
    args: argparse.Namespace, work: Callable[[Hub], Awaitable[int]], *, reads: bool
) -> int:
    """Run a retention or requisition command on the data directory directly: safe
    beside a running hub, because holds and sweeps are serialised by SQLite
    transactions. Its retention state is configured as the hub's would be."""
    hub = hub_for(args)
    require_data(hub, writes=not reads)  # never a new database in a mistyped directory

    async def run() -> int:
        async with open_store(hub):
            hub.retention.configure()
            return await work(hub)

    return asyncio.run(run())
