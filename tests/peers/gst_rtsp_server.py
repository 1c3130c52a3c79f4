#!/usr/bin/python3
"""A real RTSP camera stand-in for tests: GStreamer's gst-rtsp-server, driven from Python.

Run it with Debian's own interpreter, ``/usr/bin/python3``: PyGObject and the GStreamer
typelibs come from apt (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0`` and the
``gstreamer1.0-*`` plugin packages) and are not in the project's venv.

Example::

    /usr/bin/python3 tests/peers/gst_rtsp_server.py --port 0 --mounts cam1,cam2 \\
        --user admin --password secret

Each mount ``/<name>`` serves live H.264 over RTP (RTSP over TCP or UDP)::

    videotestsrc is-live=true pattern=<per mount>
      ! video/x-raw,width=W,height=H,framerate=F/1
      ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=2*F
      ! rtph264pay name=pay0 pt=96 config-interval=1

Factories are shared, so all clients of one mount share one encoder.

Protocol with the parent process:

* stdout carries exactly one line, ``READY port=<port>``, printed (and flushed) once the
  listening socket is bound and attached to the main loop. With ``--port 0`` the kernel
  picks a free port, and that line is how the parent learns it.
* Diagnostics go to stderr.
* SIGTERM or SIGINT closes all client connections and exits with status 0.
* Start-up failures (port in use, missing GStreamer plugin, bad arguments) exit with
  status 2 and a message on stderr, before any READY line.

Authentication: with ``--user``/``--password`` every request for a mount needs
credentials (a request without them gets ``401 Unauthorized``). ``--auth basic`` (the
default) uses ``RTSPAuth.make_basic``; ``--auth digest`` uses ``add_digest`` instead, to
exercise clients against Digest cameras. Offering both at once is not possible from Python:
``set_supported_methods`` wants flags, but the typelib declares ``GstRTSPAuthMethod`` an
enum, so PyGObject rejects ``BASIC | DIGEST`` (3) as an invalid enum value.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")

from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

#: videotestsrc patterns handed out to mounts in order, so streams differ visibly.
#: "ball" moves and "snow" is noise (a high bitrate); "smpte" is static (a low bitrate).
PATTERNS = ("smpte", "ball", "snow", "pinwheel", "circular", "spokes", "checkers-8", "gamut")

#: Name of the role the authenticated user's token carries.
ROLE = "user"

#: GStreamer elements the pipelines need, with the Debian package that ships each.
REQUIRED_ELEMENTS = {
    "videotestsrc": "gstreamer1.0-plugins-base",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "rtph264pay": "gstreamer1.0-plugins-good",
}


def log(msg: str) -> None:
    """Write one diagnostic line to stderr (stdout is reserved for the READY line).

    A parent that has closed its end of the pipe must not stop us from shutting down.
    """
    try:
        print(f"gst_rtsp_server: {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    p = argparse.ArgumentParser(
        description="Serve test-pattern H.264 over RTSP (a camera stand-in for tests)."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (0)")
    p.add_argument(
        "--mounts",
        default="cam1",
        help="comma-separated mount names, served as rtsp://host:port/<name> (cam1)",
    )
    p.add_argument("--user", help="require this user name (with --password)")
    p.add_argument("--password", help="password for --user")
    p.add_argument(
        "--auth",
        choices=("basic", "digest"),
        default="basic",
        help="authentication scheme required when --user is given (basic)",
    )
    p.add_argument("--width", type=int, default=320, help="frame width (320)")
    p.add_argument("--height", type=int, default=180, help="frame height (180)")
    p.add_argument("--fps", type=int, default=10, help="frames per second (10)")
    args = p.parse_args(argv)

    if not 0 <= args.port <= 65535:
        p.error("--port must be between 0 and 65535")
    if (args.user is None) != (args.password is None):
        p.error("--user and --password must be given together")
    if args.user is not None and (not args.user or ":" in args.user):
        p.error("--user must be non-empty and must not contain ':'")
    for name in ("width", "height", "fps"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    if args.width % 2 or args.height % 2:
        p.error("--width and --height must be even (x264 needs 4:2:0 chroma)")

    mounts = [m.strip().strip("/") for m in args.mounts.split(",")]
    if not mounts or any(not m or any(c.isspace() or c in "?#" for c in m) for m in mounts):
        p.error(f"--mounts: bad mount list {args.mounts!r}")
    if len(set(mounts)) != len(mounts):
        p.error(f"--mounts: duplicate mount names in {args.mounts!r}")
    args.mounts = mounts
    return args


def launch_line(pattern: str, width: int, height: int, fps: int) -> str:
    """The gst-launch description of one mount's media (payloader must be ``pay0``)."""
    return (
        f"( videotestsrc name=src is-live=true pattern={pattern}"
        f" ! video/x-raw,width={width},height={height},framerate={fps}/1"
        f" ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={2 * fps}"
        " ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def check_elements() -> None:
    """Fail early, with the package to install, if a needed GStreamer element is missing.

    Otherwise the failure would only show up when the first client asks for a stream
    (as a ``503 Service Unavailable`` to DESCRIBE).
    """
    missing = [
        f"{name} (apt package {pkg})"
        for name, pkg in REQUIRED_ELEMENTS.items()
        if Gst.ElementFactory.find(name) is None
    ]
    if missing:
        raise RuntimeError("missing GStreamer elements: " + ", ".join(missing))


def make_auth(user: str, password: str, scheme: str) -> GstRtspServer.RTSPAuth:
    """An RTSPAuth accepting exactly one user, whose token carries role :data:`ROLE`.

    No default token is set, so anonymous requests for a mount are refused with 401.
    OPTIONS, and DESCRIBE of an unknown path (404), are answered without credentials.
    """
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()  # gst_rtsp_token_new_empty(); new() is varargs
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    if scheme == "digest":
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    return auth


def _answer_not_seekable(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    """Pad probe: answer SEEKING queries with "not seekable" instead of videotestsrc."""
    query = info.get_query()
    if query is None or query.type != Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.OK
    # A new SEEKING query already holds seekable=FALSE, and nothing downstream of the
    # source fills it in, so answering it here unchanged means "not seekable". (Setting it
    # explicitly is not possible: the query is not writable from PyGObject.)
    return Gst.PadProbeReturn.HANDLED


def _on_media_configure(
    _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
) -> None:
    """Make the live media unseekable, as a real camera's live stream is.

    ffmpeg's PLAY always carries ``Range: npt=0.000-``. videotestsrc says it is seekable,
    so gst-rtsp-server would do a flushing seek to 0 on the *shared* pipeline for every
    new client, and every client already playing would see its timestamps jump back
    (ffmpeg: "non monotonically increasing dts"). When the pipeline is not seekable,
    the server skips the seek and still answers PLAY with 200.
    """
    src = media.get_element().get_by_name("src")
    if src is not None:
        pad = src.get_static_pad("src")
        pad.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _answer_not_seekable)


def make_factory(
    pattern: str, width: int, height: int, fps: int, with_auth: bool
) -> GstRtspServer.RTSPMediaFactory:
    """A shared media factory for one mount; with auth, only :data:`ROLE` may use it."""
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(pattern, width, height, fps))
    factory.set_shared(True)
    factory.connect("media-configure", _on_media_configure)
    if with_auth:
        # add_role() is C varargs and unusable from Python; build the structure instead.
        perms = Gst.Structure.new_from_string(
            f"{ROLE}, "
            f"{GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS}=(boolean)true, "
            f"{GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT}=(boolean)true"
        )
        factory.add_role_from_structure(perms)
    return factory


def close_all_clients(server: GstRtspServer.RTSPServer) -> None:
    """Drop every client connection (used on shutdown)."""

    def remove(_server: object, _client: object) -> GstRtspServer.RTSPFilterResult:
        return GstRtspServer.RTSPFilterResult.REMOVE

    server.client_filter(remove)


def main(argv: list[str] | None = None) -> int:
    """Start the server, print READY, and serve until SIGTERM/SIGINT."""
    args = parse_args(argv)
    Gst.init(None)
    try:
        check_elements()
    except RuntimeError as exc:
        log(str(exc))
        return 2

    with_auth = args.user is not None
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))  # "0" lets the kernel pick; see get_bound_port()
    if with_auth:
        server.set_auth(make_auth(args.user, args.password, args.auth))

    mount_points = server.get_mount_points()
    for i, name in enumerate(args.mounts):
        pattern = PATTERNS[i % len(PATTERNS)]
        factory = make_factory(pattern, args.width, args.height, args.fps, with_auth)
        mount_points.add_factory(f"/{name}", factory)

    # server.attach() reports a bind failure only as a GLib warning and a 0 id;
    # create_source() raises a GLib.Error instead, so use it and attach the source ourselves.
    try:
        source = server.create_source(None)
    except GLib.Error as exc:
        log(f"cannot listen on {args.host}:{args.port}: {exc.message}")
        return 2
    source.attach(None)
    port = server.get_bound_port()

    loop = GLib.MainLoop()

    def on_signal(signum: int) -> bool:
        log(f"signal {signum}, shutting down")
        source.destroy()  # stop accepting connections
        close_all_clients(server)
        loop.quit()
        return GLib.SOURCE_REMOVE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, on_signal, signum)

    scheme = f", auth={args.auth}" if with_auth else ""
    mounts = " ".join(f"rtsp://{args.host}:{port}/{m}" for m in args.mounts)
    log(f"serving {mounts} ({args.width}x{args.height}@{args.fps}{scheme})")
    print(f"READY port={port}", flush=True)

    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
