"""Running a hub as a process: start, wait for a stop request or a signal, stop.

SIGTERM and SIGINT ask for a stop; SIGHUP reloads the site file. A stop asked
for during start-up cancels start-up, which unwinds whatever had started (no
orphan ffmpeg). The hub itself knows nothing of signals: tests and embedders
start and stop it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from csuhub.hub import Hub

__all__ = ["Runner"]


class Runner:
    """Runs one hub until asked to stop (``request_stop``, SIGTERM, SIGINT)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._stop_requested: asyncio.Event | None = None
        self._stop_reason = ""
        self._reload_tasks: set[asyncio.Task[Any]] = set()

    def request_stop(self, reason: str = "requested") -> None:
        """Ask the running hub to stop (signal handlers, tests)."""
        self._stop_reason = reason
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def run(
        self,
        *,
        handle_signals: bool = True,
        on_started: Callable[[Hub], Any] | None = None,
    ) -> str:
        """Start, wait for SIGTERM/SIGINT or ``request_stop``, stop. Returns the reason."""
        hub = self.hub
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._stop_reason = ""
        installed = self._install_signals(loop) if handle_signals else []
        try:
            start = asyncio.create_task(hub.start(), name="csuhub:start")
            waiter = asyncio.create_task(self._stop_requested.wait())
            await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await start
                waiter.cancel()
                return self._stop_reason or "stopped during start-up"
            if start.exception() is not None:
                waiter.cancel()
                raise cast(BaseException, start.exception())
            if on_started is not None:
                on_started(hub)
            await waiter
            await hub.stop(self._stop_reason)
            return self._stop_reason
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
                installed.append(signum)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            installed.append(signal.SIGHUP)
        return installed

    def _on_sighup(self) -> None:
        if self.hub.state != "running":
            return
        task = asyncio.get_running_loop().create_task(self.hub.reload("SIGHUP"))
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_tasks.discard)
