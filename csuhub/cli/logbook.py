"""``csuhub logbook``: being built (issue 13)."""

from __future__ import annotations

import argparse

from csuhub.cli.common import Output

Handler = object


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """No subcommand yet."""


HANDLERS: dict[str, object] = {}
_ = Output
