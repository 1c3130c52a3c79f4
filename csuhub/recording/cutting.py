"""The cut of an export: ffmpeg writing the range into the package, followed
through its ``-progress`` output, while a thread hashes what it writes.

Apart from ``csuhub.recording.export`` so that the export reads as the steps
of the evidence procedure and this as the machinery under one of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from csuhub.hashing import thread_buffer
from csuhub.recording.concat import concat_args

if TYPE_CHECKING:
    from csuhub.supervisor import ProcessGroup


#: what ``-progress`` writes; any other line on stderr is an error message
PROGRESS_KEYS = frozenset(
    {
        "frame",
        "fps",
        "bitrate",
        "total_size",
        "out_time_us",
        "out_time_ms",
        "out_time",
        "dup_frames",
        "drop_frames",
        "speed",
        "progress",
    }
)


async def cut_to(
    processes: ProcessGroup,
    fd: int,
    ffmpeg: str,
    listing: Path,
    expected: float,
    progress: Callable[[float], None],
    command: list[str] | None = None,
) -> tuple[int, str, float]:
    """Run the cut (``command``, else the stream-copy concat of ``listing``) into
    ``fd`` (ffmpeg's stdout: the package, at the current offset); returns (exit
    code, errors, duration from ffmpeg's progress)."""
    proc = await processes.spawn(
        command or concat_args(ffmpeg, listing, "pipe:1", "-progress", "pipe:2"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=fd,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        return await _follow_cut(proc, expected, progress)
    except BaseException:
        # cancelled (hub stopping) or failed here: ffmpeg must not go on writing
        # into a package that is being thrown away
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise


async def _follow_cut(
    proc: asyncio.subprocess.Process, expected: float, progress: Callable[[float], None]
) -> tuple[int, str, float]:
    assert proc.stderr is not None
    out_time = 0.0
    errors: list[str] = []
    while line := await proc.stderr.readline():
        text = line.decode(errors="replace").strip()
        key, sep, value = text.partition("=")
        if not sep or (key not in PROGRESS_KEYS and not key.startswith("stream_")):
            if text:
                errors.append(text)
            continue
        if key == "out_time_us" and value.isascii() and value.isdigit():
            out_time = int(value) / 1e6
            if expected > 0:
                progress(min(1.0, out_time / expected))
    await proc.wait()
    return proc.returncode or 0, "\n".join(errors[-20:]), out_time


def hash_following(package: Path, offset: int, done: threading.Event) -> tuple[str, int, int]:
    """SHA-256, CRC-32 and size of the package's bytes from ``offset``, read as
    ffmpeg writes them (from the page cache); ends at EOF once ``done`` is set."""
    digest = hashlib.sha256()
    crc = 0
    size = 0
    buffer, view = thread_buffer()
    with package.open("rb", buffering=0) as src:
        src.seek(offset)
        while True:
            finished = done.is_set()
            n = src.readinto(buffer)
            if n:
                chunk = view[:n]
                digest.update(chunk)
                crc = zlib.crc32(chunk, crc)
                size += n
            elif finished:
                break  # ffmpeg had exited before this empty read: the video is complete
            else:
                done.wait(0.005)
    return digest.hexdigest(), crc, size
