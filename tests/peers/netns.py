"""Network namespaces for tests that need real multicast or servers that bind 0.0.0.0.

Needs root and iproute2 (``ip``). Everything here runs ``ip`` with argument lists, never a shell.
Multicast never touches the host's interfaces: it only crosses links made here.

Two topologies, both checked with ipycam (a multicast Probe gets a ProbeMatch in about 1 ms):

``NetnsPair``: a "hub" and a "cam" namespace joined by a veth pair on 10.213.X.0/24
(hub ``.1``, cam ``.2``, extra camera addresses from ``.10`` up). Both get
``224.0.0.0/4 dev <veth>`` so a Probe to 239.255.255.250 leaves the hub without
``IP_MULTICAST_IF`` and the cameras' Hello/Bye go out too.

``LoopbackNetns``: one namespace, only ``lo`` (127.0.0.1), with ``224.0.0.0/4 dev lo``. The hub
and the cameras share it (and its port space).

Code reaches a namespace in one of two ways:

* a child process: ``popen(ns, [...])`` or ``exec_args(ns) + [...]`` (``ip netns exec``);
* the calling thread: ``with entered(ns): ...``. Sockets made inside the block stay in the
  namespace for their whole life, so an asyncio test can open aiohttp/ONVIF clients there.

Names are ``csu-<pid>-<hex>-<role>``: ``cleanup_stale()`` removes those of dead test runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PREFIX = "csu"
NETNS_DIR = Path("/run/netns")
MCAST_ROUTE = "224.0.0.0/4"
_CLONE_NEWNET = 0x40000000
_NAME_RE = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+-\w+$")


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message carries its stderr."""


def available() -> bool:
    """True when this process may create namespaces (root, ``ip`` present)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def exec_args(ns: str) -> list[str]:
    """The prefix that runs a command inside ``ns``: ``ip netns exec <ns>``."""
    return ["ip", "netns", "exec", ns]


def ip(*args: str) -> str:
    """Run ``ip <args>``; return stdout, raise ``NetnsError`` with stderr on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def popen(ns: str, args: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
    """Start ``args`` inside ``ns``. ``ip netns exec`` execs the command, so the pid is the
    command's own. It gets a new session by default so its whole group can be signalled."""
    kw.setdefault("start_new_session", True)
    return subprocess.Popen([*exec_args(ns), *args], **kw)


def run(ns: str, args: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` inside ``ns`` (defaults: capture text output, 60 s timeout)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([*exec_args(ns), *args], check=kw.pop("check", False), **kw)


def pids(ns: str) -> list[int]:
    """Pids of every process whose network namespace is ``ns``."""
    try:
        return [int(p) for p in ip("netns", "pids", ns).split()]
    except NetnsError:
        return []


def kill_all(ns: str, grace: float = 2.0) -> None:
    """SIGTERM every process in ``ns``, then SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        left = pids(ns)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = pids(ns)
        if not left:
            return


def delete(ns: str) -> None:
    """Kill everything inside ``ns`` and delete it (its veth ends go with it). Idempotent."""
    if not (NETNS_DIR / ns).exists():
        return
    kill_all(ns)
    with contextlib.suppress(NetnsError):
        ip("netns", "del", ns)


def cleanup_stale() -> list[str]:
    """Delete ``csu-<pid>-...`` namespaces whose creating process is gone; return their names."""
    gone = []
    for path in NETNS_DIR.glob(f"{PREFIX}-*") if NETNS_DIR.is_dir() else ():
        match = _NAME_RE.match(path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            delete(path.name)
            gone.append(path.name)
    return gone


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, _CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def current() -> str | None:
    """The name of the namespace the calling thread is in, or None when it is not one of
    ``/run/netns`` (the host's). Assert it before any connect that must not leave the test."""
    here = os.stat("/proc/thread-self/ns/net")
    for path in NETNS_DIR.glob("*") if NETNS_DIR.is_dir() else ():
        with contextlib.suppress(OSError):
            st = path.stat()
            if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino):
                return path.name
    return None


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """Move the calling thread (only it) into ``ns`` for the block, then back.

    A socket belongs to the namespace its thread was in when the socket was *created*, and
    aiohttp (so onvif-zeep-async) creates sockets lazily, at connect time. So keep every
    ``await`` that may connect inside the block; building a client inside and awaiting it
    outside sends the request from the host, where 10.213.x.x goes out the default route.
    With asyncio, the loop's thread is the one moved: every task that runs meanwhile is
    inside too. Other threads (the default executor) stay outside, which is harmless for
    file loading and IP-literal addresses.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / ns, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


class _Base:
    """Shared bookkeeping: the namespaces made, the processes started, teardown."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[Any]] = []

    def _add_ns(self, role: str) -> str:
        name = f"{self.tag}-{role}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def popen(self, ns: str, args: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """``popen`` that also remembers the process, so ``close()`` ends it."""
        proc = popen(ns, args, **kw)
        self.procs.append(proc)
        return proc

    def run(self, ns: str, args: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        return run(ns, args, **kw)

    def close(self) -> None:
        """End the processes started here, then everything in the namespaces, then delete them."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        for ns in reversed(self.namespaces):
            delete(ns)
        self.namespaces.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NetnsPair(_Base):
    """Two namespaces, ``hub`` and ``cam``, joined by a veth pair on 10.213.X.0/24.

    ``hub_ip`` is ``.1`` and ``cam_ip`` is ``.2``; ``add_cam_address(i)`` adds ``.(10+i)`` to the
    cam side so several cameras sharing the namespace still advertise distinct hosts.
    """

    HUB_IF = "csuhub0"
    CAM_IF = "csucam0"

    def __init__(self) -> None:
        super().__init__()
        suffix = int(self.tag.rsplit("-", 1)[1], 16)
        self.subnet = 1 + suffix % 250
        self.hub_ip = f"10.213.{self.subnet}.1"
        self.cam_ip = f"10.213.{self.subnet}.2"
        try:
            self.hub = self._add_ns("hub")
            self.cam = self._add_ns("cam")
            # Created straight inside the namespaces: the names never exist on the host.
            ip(
                "link",
                "add",
                "name",
                self.HUB_IF,
                "netns",
                self.hub,
                "type",
                "veth",
                "peer",
                "name",
                self.CAM_IF,
                "netns",
                self.cam,
            )
            for ns, dev, addr in (
                (self.hub, self.HUB_IF, self.hub_ip),
                (self.cam, self.CAM_IF, self.cam_ip),
            ):
                ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
                ip("-n", ns, "route", "add", MCAST_ROUTE, "dev", dev)
        except BaseException:
            self.close()
            raise

    def cam_address(self, index: int) -> str:
        """The address ``add_cam_address(index)`` gives (index 0..240)."""
        return f"10.213.{self.subnet}.{10 + index}"

    def add_cam_address(self, index: int) -> str:
        """Add ``cam_address(index)`` to the cam side of the veth; return it."""
        addr = self.cam_address(index)
        ip("-n", self.cam, "addr", "add", f"{addr}/24", "dev", self.CAM_IF)
        return addr

    def del_cam_address(self, addr: str) -> None:
        """Remove an address from the cam side: that host becomes unreachable (a cut cable)."""
        ip("-n", self.cam, "addr", "del", f"{addr}/24", "dev", self.CAM_IF)

    def set_link(self, up: bool) -> None:
        """Take the cam end of the veth down (every camera unreachable) or back up."""
        ip("-n", self.cam, "link", "set", self.CAM_IF, "up" if up else "down")
        if up:  # a downed device loses its routes; restore the multicast one
            with contextlib.suppress(NetnsError):
                ip("-n", self.cam, "route", "add", MCAST_ROUTE, "dev", self.CAM_IF)


class LoopbackNetns(_Base):
    """One namespace with only ``lo`` (127.0.0.1), multicast routed over it.

    The hub and the cameras share it (``hub == cam == name``), so they also share its ports.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ip = "127.0.0.1"
        try:
            self.name = self._add_ns("lo")
            ip("-n", self.name, "route", "add", MCAST_ROUTE, "dev", "lo")
        except BaseException:
            self.close()
            raise
        self.hub = self.cam = self.name  # the same names as NetnsPair's, for shared helpers

    def cam_address(self, index: int) -> str:
        """``127.0.0.(10+index)``: already local (lo holds 127.0.0.0/8), nothing to add."""
        return f"127.0.0.{10 + index}"

    def add_cam_address(self, index: int) -> str:
        return self.cam_address(index)
