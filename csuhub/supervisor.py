"""Supervised background tasks and child processes.

A 24/7 system cannot lose a task silently: a crashed task is logged, reported
on the bus and restarted with capped exponential backoff. Child processes
(ffmpeg above all) are tracked so that stopping the hub, even in the middle of
start-up, leaves no orphan behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from csuhub.backoff import Backoff
from csuhub.bus import EventBus
from csuhub.events import TaskCrashed

_LOGGER = logging.getLogger(__name__)

#: After this long without a crash, the backoff resets.
STABLE_AFTER = 60.0


class Supervisor:
    def __init__(
        self,
        bus: EventBus,
        *,
        initial_backoff: float = 0.5,
        max_backoff: float = 60.0,
    ) -> None:
        self.bus = bus
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.crashes: dict[str, int] = {}

    def spawn(
        self,
        name: str,
        factory: Callable[[], Awaitable[Any]],
        *,
        restart: bool = True,
    ) -> Callable[[], None]:
        """Run ``factory()`` in the background under supervision; returns the cancel.

        A task that returns normally is done; one that raises is restarted
        (``restart=True``) after a backoff that doubles up to ``max_backoff``.
        """
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"a task named {name!r} is already running")
        task = asyncio.get_running_loop().create_task(
            self._run(name, factory, restart), name=f"csuhub:{name}"
        )
        self._tasks[name] = task

        def cancel() -> None:
            task.cancel()

        return cancel

    async def _run(self, name: str, factory: Callable[[], Awaitable[Any]], restart: bool) -> None:
        backoff = Backoff(self.initial_backoff, self.max_backoff)
        while True:
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if time.monotonic() - started > STABLE_AFTER:
                    backoff.reset()
                wait = backoff.next()
                self.crashes[name] = self.crashes.get(name, 0) + 1
                _LOGGER.exception(
                    "task %s crashed (%d); restarting in %.1fs", name, self.crashes[name], wait
                )
                self.bus.fire(
                    TaskCrashed(
                        task=name,
                        error=f"{type(err).__name__}: {err}",
                        restart_in=wait if restart else -1,
                        crashes=self.crashes[name],
                    )
                )
                if not restart:
                    return
                await asyncio.sleep(wait)

    async def cancel(self, name: str) -> None:
        """Stop one task and wait until it is gone."""
        task = self._tasks.pop(name, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def running(self) -> list[str]:
        return sorted(name for name, task in self._tasks.items() if not task.done())

    async def stop(self) -> None:
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


def _die_with_parent(args: Sequence[str]) -> list[str]:
    """``args`` run so that Linux SIGTERMs the child if the hub dies, even by kill -9.

    util-linux's ``setpriv --pdeathsig`` sets the parent-death signal and execs
    the command (same pid). Doing it in-process needs ``preexec_fn``, which runs
    Python between fork and exec and is unsafe while other threads (the hash
    pool, ``to_thread``) may hold locks.
    """
    if _SETPRIV is None:
        return list(args)
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *args]


_SETPRIV = shutil.which("setpriv")
if _SETPRIV is None:  # pragma: no cover - util-linux is essential on Debian
    _LOGGER.warning("setpriv not found: child processes may outlive a killed hub")


#: how often an exiting child's status is looked at (only while one exits)
_EXIT_POLL = 0.05
#: the longest a discarded output is read after its child is told to stop
_DISCARD_FOR = 10.0


async def _discard(stream: asyncio.StreamReader) -> None:
    """``stream`` read to its end and thrown away, so that its pipe closes."""
    # RuntimeError: someone else reads it after all; or the transport is gone
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DISCARD_FOR):
            while await stream.read(1 << 16):
                pass


class ProcessGroup:
    """Every child process the hub starts, so none outlives it."""

    def __init__(self, *, term_timeout: float = 5.0) -> None:
        self.term_timeout = term_timeout
        self._procs: set[asyncio.subprocess.Process] = set()
        #: the reapers, referenced until done: the loop keeps only weak references
        self._reapers: set[asyncio.Task[None]] = set()
        self._closed = False

    async def spawn(self, args: Sequence[str], **kwargs: Any) -> asyncio.subprocess.Process:
        """Start ``args`` (a list, never a shell string) and track it until it exits."""
        if isinstance(args, str):
            raise TypeError("pass arguments as a list; shell strings are never built")
        if self._closed:
            raise RuntimeError("the hub is stopping; no new processes")
        kwargs.setdefault("stdin", asyncio.subprocess.DEVNULL)
        proc = await asyncio.create_subprocess_exec(*_die_with_parent(args), **kwargs)
        self._procs.add(proc)
        reaper = asyncio.get_running_loop().create_task(self._reap(proc))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return proc

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(Exception):
            await proc.wait()
        self._procs.discard(proc)

    def pids(self) -> list[int]:
        return sorted(p.pid for p in self._procs if p.returncode is None)

    async def terminate(
        self, proc: asyncio.subprocess.Process, *, discard_output: bool = False
    ) -> int | None:
        """SIGTERM (ffmpeg then closes its file cleanly), SIGKILL after a timeout.

        ``discard_output``: nobody reads the child's stdout any more (a live
        view stopping): it is read and thrown away meanwhile. An ffmpeg
        blocked writing into a full pipe does not act on SIGTERM (its write
        restarts after the handler) and waited for the SIGKILL: a hub with
        twelve live views took a minute to stop."""
        if discard_output and proc.stdout is not None and not proc.stdout.at_eof():
            # to its end, beyond the exit: then the pipe closes and wait() resolves
            task = asyncio.get_running_loop().create_task(_discard(proc.stdout))
            self._reapers.add(task)
            task.add_done_callback(self._reapers.discard)
        if proc.returncode is not None:
            return proc.returncode
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        code = await self._exit_of(proc, self.term_timeout)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await self._exit_of(proc, None)
        return code

    async def _exit_of(self, proc: asyncio.subprocess.Process, timeout: float | None) -> int | None:
        """The child's exit status once it has exited (None: still running after
        ``timeout`` seconds).

        Why not ``proc.wait()`` alone: on Python 3.11 it resolves only once the
        child's pipes are closed as well, and a pipe whose reader stopped (a
        cancelled live view's stdout: its buffer full, its transport paused)
        never reads the end of file. The hub's stop waited for ever on children
        long reaped (the soak's wind-down). The exit status itself is known as
        soon as the child is reaped. Only the pipe's owner knows whether it
        still reads (a recorder reads its segment list to the end, between
        indexing segments): it says so with ``discard_output``."""
        waiting = asyncio.ensure_future(proc.wait())
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while not waiting.done():
                if proc.returncode is not None:
                    return proc.returncode
                if deadline is not None and loop.time() >= deadline:
                    return None
                await asyncio.wait({waiting}, timeout=_EXIT_POLL)
            return waiting.result()
        finally:
            waiting.cancel()

    def reopen(self) -> None:
        """Accept new processes again (a hub started after a stop)."""
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        procs = list(self._procs)
        if procs:
            await asyncio.gather(*(self.terminate(p) for p in procs), return_exceptions=True)
        self._procs.clear()
