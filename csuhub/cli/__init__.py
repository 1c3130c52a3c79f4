"""The ``csuhub`` command: the parser and ``main()``.

One module per command group adds its subcommands (``add_parsers``) and names
their handlers (``HANDLERS``); what they share is in ``common``. Exit codes
are listed there and in docs/cli.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from csuhub import __version__
from csuhub.cli import (
    audit,
    blueprints,
    cameras,
    incidents,
    keys,
    logbook,
    recordings,
    requisitions,
    retention,
    run,
    site,
    tokens,
    transparency,
    users,
    walls,
)
from csuhub.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError, Output, report_invalid
from csuhub.config import ConfigInvalid
from csuhub.store import StoreError

#: Command groups, in the order ``csuhub --help`` lists their commands.
GROUPS: tuple[ModuleType, ...] = (
    run,  # run, demo
    site,  # check, reload, plugins
    blueprints,
    cameras,  # discover, cameras
    recordings,  # recordings, export
    keys,  # verify, keys
    retention,
    requisitions,
    tokens,
    users,
    audit,  # audit verify, audit export
    incidents,
    logbook,
    walls,  # walls list, walls show
    transparency,  # transparency export
)

Handler = Callable[[argparse.Namespace, Output], int]


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
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def handlers() -> dict[str, Handler]:
    """Each command's handler, from the groups' ``HANDLERS``."""
    found: dict[str, Handler] = {}
    for group in GROUPS:
        found.update(group.HANDLERS)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2 via argparse
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    out = Output(getattr(args, "json", False))
    try:
        return handlers()[args.command](args, out)
    except CliError as err:
        out.error(str(err), err.code)
        return err.code
    except ConfigInvalid as err:  # e.g. a retention policy that validates but cannot be built
        report_invalid(out, err)
        return EXIT_INVALID
    except StoreError as err:  # a corrupted database, or one from a newer csuhub
        out.error(str(err), EXIT_USAGE)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
