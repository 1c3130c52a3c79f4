"""A child whose pipe nobody reads any more still counts as exited when it
exits: the hub's stop hung on it (the soak's wind-down, bench/soak.py).

On Python 3.11 ``Process.wait()`` resolves only once the child's pipes are
closed too; a pipe whose reader stopped (a live view's ffmpeg, its reading
task cancelled at stop) has its transport paused on a full buffer and never
reads the end of file. A real child (``yes``) fills the pipe here."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time

import pytest

from csuhub.supervisor import ProcessGroup


async def _unread(group: ProcessGroup) -> asyncio.subprocess.Process:
    yes = shutil.which("yes")
    if yes is None:
        pytest.fail("coreutils' yes is missing")
    proc = await group.spawn([yes, "csuhub"], stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert await proc.stdout.read(1024)  # a reader that then stops reading
    await asyncio.sleep(0.5)  # the buffer fills, the transport pauses
    return proc


async def _closed(proc: asyncio.subprocess.Process) -> None:
    """Until the child's stdout has reached its end (drained, so it closed)."""
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        while not proc.stdout.at_eof():
            await asyncio.sleep(0.05)


async def test_terminating_a_child_whose_pipe_nobody_reads_returns() -> None:
    group = ProcessGroup(term_timeout=5.0)
    proc = await _unread(group)
    began = time.monotonic()
    code = await asyncio.wait_for(group.terminate(proc), 10)  # it waited for ever
    assert code == -signal.SIGTERM
    assert time.monotonic() - began < 3
    assert group.pids() == []
    await asyncio.sleep(1.5)
    assert proc.stdout is not None and not proc.stdout.at_eof()  # left to its owner
    # the owner says nobody reads it: read to its end, so it closes (no descriptor stays)
    await group.terminate(proc, discard_output=True)
    await _closed(proc)
    await asyncio.wait_for(group.close(), 10)


async def test_the_group_closes_with_an_unread_child() -> None:
    group = ProcessGroup(term_timeout=5.0)
    proc = await _unread(group)
    await asyncio.wait_for(group.close(), 10)  # the hub's stop
    assert proc.returncode == -signal.SIGTERM
    assert proc.stdout is not None
    assert b"csuhub" in await asyncio.wait_for(proc.stdout.read(), 10)  # the owner's
    await _closed(proc)


async def test_a_pipe_still_read_is_left_to_its_reader() -> None:
    """A pipe's reader gets every line, the last included (a recorder's last
    segment), even when it comes back for it later (a recorder indexing the
    segment before) and even when the child had exited before it was told to
    stop: the group never reads a pipe it was not told to discard. (A drain
    of "unread" pipes a second after such a call took that line.)"""
    import sys

    group = ProcessGroup(term_timeout=5.0)
    script = "import time\nprint('first', flush=True)\ntime.sleep(0.3)\nprint('last')\n"
    proc = await group.spawn([sys.executable, "-c", script], stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"first\n"
    async with asyncio.timeout(10):
        while proc.returncode is None:
            await asyncio.sleep(0.05)
    assert await group.terminate(proc) == 0  # already exited
    await asyncio.sleep(1.5)  # the reader away, busy with the line before
    assert await asyncio.wait_for(proc.stdout.readline(), 5) == b"last\n"
    assert await proc.stdout.read() == b""


async def _blocked_ffmpeg(group: ProcessGroup) -> asyncio.subprocess.Process:
    """An ffmpeg writing raw video into a pipe nobody reads any more: blocked."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is missing: run ./scripts/install.sh --test")
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi"]
    args += ["-i", "testsrc2=size=640x360:rate=25", "-f", "rawvideo", "pipe:1"]
    proc = await group.spawn(args, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert await proc.stdout.read(1 << 16)
    await asyncio.sleep(1.0)  # the pipe and the reader's buffer fill: ffmpeg blocks
    return proc


async def test_a_live_view_s_ffmpeg_stops_on_sigterm_with_its_output_discarded() -> None:
    """A live view's ffmpeg, its reader gone, blocked on a full pipe, waited for
    the SIGKILL (5 s each, one after another: a hub with twelve live views took
    a minute to stop). Its output discarded while it stops, it acts on SIGTERM."""
    group = ProcessGroup(term_timeout=3.0)
    proc = await _blocked_ffmpeg(group)
    began = time.monotonic()
    code = await asyncio.wait_for(group.terminate(proc), 15)
    assert code == -signal.SIGKILL and time.monotonic() - began >= 3.0  # the cost, shown
    # its pipe read to the end, so it closes while the loop runs (left open, its
    # transport was collected after the loop closed: an unraisable error in a
    # later test)
    await group.terminate(proc, discard_output=True)
    await _closed(proc)
    proc = await _blocked_ffmpeg(group)
    began = time.monotonic()
    code = await asyncio.wait_for(group.terminate(proc, discard_output=True), 15)
    assert code != -signal.SIGKILL and time.monotonic() - began < 2.0
    await asyncio.wait_for(group.close(), 10)
