"""Starts live video with the hub (being built, issue 14)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any


async def start_live(hub: Any, stack: AsyncExitStack) -> None:
    """Nothing yet."""
