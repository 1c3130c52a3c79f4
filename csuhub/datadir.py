"""Where a hub keeps its data, and the lock that keeps it to one hub.

Two hubs on one data directory would corrupt each other's recordings and
register, so the directory is claimed with a pidfile lock (``flock``) held for
the hub's life; the pid written in it is what ``csuhub reload`` and the CLI's
signals read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["PIDFILE", "DataDirLock", "default_data_dir", "hub_pid", "resolve_data_dir"]

PIDFILE = "csuhub.pid"


def default_data_dir(name: str = "") -> Path:
    """``$XDG_DATA_HOME/csuhub`` (``~/.local/share/csuhub``), per the XDG spec."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "csuhub" / name if name else base / "csuhub"


def resolve_data_dir(override: Path | None, configured: Any, source: Path | None) -> Path:
    """The data directory: the caller's override, else ``hub.data_dir`` (relative to
    the site file, so a site moves with its data), else the XDG default."""
    if override is not None:
        return override.expanduser().resolve()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute() and source is not None:
            path = source.parent / path
        return path.resolve()
    return default_data_dir()


class DataDirLock:
    """The pidfile lock of one data directory (``acquire`` raises ``OSError`` when
    another hub holds it, naming its pid)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.data_dir / PIDFILE, "a+")  # held open (and locked) for the hub's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "?"
            handle.close()
            raise OSError(
                f"another hub (pid {other}) is running on the data directory {self.data_dir}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()


def hub_pid(data_dir: Path) -> int | None:
    """The pid of the hub running on ``data_dir`` (it holds ``csuhub.pid``), if any.

    A pid written in the file is not enough: after a crash the number may have been
    reused by an unrelated process, which a SIGHUP would kill. Only a hub holds the
    file's lock, so the pid counts only while somebody holds it."""
    try:
        with open(data_dir / PIDFILE) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # locked: a hub holds it
            else:
                return None  # nobody holds the lock: no hub, whatever the file says
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's
    return pid
