"""ipycam (PyPI, a virtual ONVIF camera) run as real peers inside network namespaces.

ipycam lives in its own venv (it pulls opencv-python and numpy), never in the project's.
``find_python()`` looks for it at ``$CSUHUB_IPYCAM_PYTHON``, ``$CSUHUB_PEERS_VENV/bin/python``,
then ``<repo>/.peers-venv/bin/python``; ``python tests/peers/ipycam_peer.py install [DIR]``
makes that venv.

One namespace holds several cameras: ipycam binds 0.0.0.0 for its ONVIF/HTTP and RTSP ports,
so each camera gets its own pair (``8080+i``, ``8554+i``) and, for distinct XAddrs, its own
address (``net.add_cam_address(i)``). They all share UDP 3702 (ipycam sets SO_REUSEADDR) and
every one of them answers a multicast Probe.

    with NetnsPair() as net:
        cams = start_cameras(net, 3, tmp_path, clip=make_clip(tmp_path / "clip.mp4"))
        with entered(net.hub):
            replies = probe()              # 3 raw ProbeMatch datagrams
        cams[1].stop()                     # offline (SIGINT: ipycam sends a Bye)
        cams[1].start().wait_ready()       # online again, with a NEW EndpointReference
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # imported as ``peers.ipycam_peer`` (tests/ on sys.path) or run as a script
    from . import netns
except ImportError:
    import netns  # type: ignore[no-redef]

IPYCAM_VERSION = "1.3.0"
REPO = Path(__file__).resolve().parents[2]
GROUP = ("239.255.255.250", 3702)
# Never through an http_proxy from the environment: the camera is in a namespace.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" \
xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" \
xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" \
xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>\
<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>\
<a:MessageID>{message_id}</a:MessageID><a:ReplyTo>\
<a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>\
</a:ReplyTo><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>\
</s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe>\
</s:Body></s:Envelope>"""


class CameraError(RuntimeError):
    """An ipycam instance exited or did not come up; the message ends with its log."""


def find_python() -> str | None:
    """The Python of a venv that has ipycam, or None."""
    candidates = [os.environ.get("CSUHUB_IPYCAM_PYTHON", "")]
    if venv := os.environ.get("CSUHUB_PEERS_VENV"):
        candidates.append(str(Path(venv) / "bin" / "python"))
    candidates.append(str(REPO / ".peers-venv" / "bin" / "python"))
    for cand in filter(None, candidates):
        if Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def install(venv: Path) -> str:
    """Create ``venv`` with ipycam in it (about 5 s with a warm pip cache); return its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"ipycam=={IPYCAM_VERSION}"],
        check=True,
    )  # fmt: skip
    return str(python)


def make_clip(path: Path, size: str = "320x180", rate: int = 10, seconds: int = 10) -> Path:
    """A small H.264 test clip (about 0.2 MB, under a second to make); reused if present."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=size={size}:rate={rate}", "-t", str(seconds),
             "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", str(2 * rate), str(partial)],
            check=True, timeout=120,
        )  # fmt: skip
        partial.replace(path)  # never a half-written clip under the final name
    return path


def probe(timeout: float = 1.0, iface: str | None = None) -> list[tuple[bytes, str]]:
    """Send one multicast Probe for NetworkVideoTransmitter; return ``(reply, source ip)``s.

    Call it inside a namespace (``with netns.entered(net.hub):``). ``iface`` (a local IPv4
    address) sets ``IP_MULTICAST_IF``; without it the namespace needs a multicast route.
    """
    if netns.current() is None:
        raise RuntimeError("probe() outside a test namespace would multicast on the host")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    replies: list[tuple[bytes, str]] = []
    with sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        if iface:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
        sock.sendto(PROBE.format(message_id=f"urn:uuid:{uuid.uuid4()}").encode(), GROUP)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                break
            replies.append((data, addr[0]))
    return replies


@dataclass
class IpycamCamera:
    """One ipycam process inside namespace ``ns``, advertising ``ip``.

    ``start()`` launches it, ``wait_ready()`` waits for its ports and its first frame,
    ``stop()``/``kill()`` take it offline (with or without a WS-Discovery Bye), ``start()``
    again brings it back on the same address and ports.
    """

    net: netns.NetnsPair | netns.LoopbackNetns
    ns: str
    ip: str
    workdir: Path
    clip: Path
    python: str
    onvif_port: int = 8080
    rtsp_port: int = 8554
    name: str = "Camera"
    username: str = "admin"
    password: str = "secret"
    extra: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _log_start: int = field(default=0, repr=False)  # where this run's log begins

    @property
    def config(self) -> dict[str, Any]:
        """The ``cfg.json`` it runs with; ``extra`` overrides any key."""
        return {
            "name": self.name,
            "serial_number": f"CSU-{self.ip}-{self.onvif_port}",
            "local_ip": self.ip,
            "onvif_port": self.onvif_port,
            "rtsp_port": self.rtsp_port,
            "main_width": 320,
            "main_height": 180,
            "main_fps": 10,
            "main_bitrate": "300K",
            "sub_width": 160,
            "sub_height": 90,
            "sub_fps": 10,
            "sub_bitrate": "100K",
            "hw_accel": "cpu",
            "username": self.username,
            "password": self.password,
            **self.extra,
        }

    @property
    def xaddr(self) -> str:
        return f"http://{self.ip}:{self.onvif_port}/onvif/device_service"

    @property
    def snapshot_url(self) -> str:
        return f"http://{self.ip}:{self.onvif_port}/snapshot.jpg"

    def rtsp_url(self, stream: str = "main") -> str:
        return f"rtsp://{self.ip}:{self.rtsp_port}/video_{stream}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "ipycam.log"

    def log(self) -> str:
        """What the current (or last) run has logged."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> IpycamCamera:
        """Write the config and launch ipycam (its ports open about 1 s later)."""
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cfg.json").write_text(json.dumps(self.config, indent=1))
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            self.proc = self.net.popen(
                self.ns,
                [self.python, "-m", "ipycam", "--config", "cfg.json", "--source", str(self.clip)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def _failed(self, why: str) -> CameraError:
        return CameraError(f"ipycam {self.name} ({self.xaddr}): {why}\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Wait until ONVIF and RTSP accept connections and a snapshot is served; return the
        seconds it took. Raises ``CameraError`` if the process dies, an RTSP port clash made it
        fall back to MJPEG-only, or time runs out. Blocking: from a coroutine, use
        ``await asyncio.to_thread(cam.wait_ready)``."""
        t0 = time.monotonic()
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.snapshot_url, headers={"Authorization": f"Basic {auth}"}
        )
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise self._failed("exited")
            if "Failed to start RTSP server" in self.log():
                raise self._failed("RTSP port in use")
            with netns.entered(self.ns):
                ports_up = all(_connects(self.ip, p) for p in (self.onvif_port, self.rtsp_port))
                if ports_up:
                    with contextlib.suppress(OSError, urllib.error.URLError):
                        with _NO_PROXY.open(request, timeout=2) as resp:
                            if resp.status == 200:
                                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise self._failed(f"not ready after {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop: SIGINT (ipycam multicasts a Bye), then SIGKILL of its group."""
        self._signal(signal.SIGINT, timeout)

    def kill(self) -> None:
        """Power cut: SIGKILL of its whole process group (its ffmpeg encoders too), no Bye."""
        self._signal(signal.SIGKILL, 5.0)

    def pause(self) -> None:
        """A hung camera: SIGSTOP its group. Ports stay open, nothing answers (onvif-zeep-async
        waits up to its 90 s default timeout). ``resume()`` undoes it; ``kill()`` still works."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
                os.killpg(proc.pid, signal.SIGCONT)  # in case it was paused
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # orphaned encoders, if any
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def restart(self, timeout: float = 20.0) -> float:
        """``stop()`` then ``start()`` and ``wait_ready()``; return the seconds to ready."""
        self.stop()
        return self.start().wait_ready(timeout)


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_cameras(
    net: netns.NetnsPair | netns.LoopbackNetns,
    count: int,
    workdir: Path,
    *,
    clip: Path | None = None,
    python: str | None = None,
    wait: bool = True,
    timeout: float = 30.0,
    **kw: Any,
) -> list[IpycamCamera]:
    """Start ``count`` cameras in ``net.cam`` (of a ``NetnsPair`` or a ``LoopbackNetns``).

    Camera ``i`` is named ``cam<i>``, works in ``workdir/cam<i>``, advertises its own address
    (``10.213.X.(10+i)`` or ``127.0.0.(10+i)``) and uses ports ``8080+i`` and ``8554+i``.
    ``kw`` goes to every ``IpycamCamera`` (``username``, ``password``, ``extra``).
    Processes end with ``net.close()`` even if the test forgets ``stop()``.
    """
    python = python or find_python()
    if python is None:
        raise CameraError("no ipycam venv: run `python tests/peers/ipycam_peer.py install DIR`")
    clip = clip or make_clip(workdir / "clip.mp4")
    cams = []
    for i in range(count):
        cam = IpycamCamera(
            net=net,
            ns=net.cam,
            ip=net.add_cam_address(i),
            workdir=workdir / f"cam{i}",
            clip=clip,
            python=python,
            onvif_port=8080 + i,
            rtsp_port=8554 + i,
            name=f"cam{i}",
            **kw,
        )
        cams.append(cam.start())
    if wait:
        for cam in cams:
            cam.wait_ready(timeout)
    return cams


if __name__ == "__main__":
    if sys.argv[1:2] == ["install"]:
        target = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / ".peers-venv"
        print(install(target))
    else:
        sys.exit("usage: ipycam_peer.py install [VENV_DIR]")
