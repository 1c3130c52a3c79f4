"""Starts and stops the web app with AppRunner/TCPSite (never ``run_app``,
which would take over the event loop the hub owns)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from aiohttp import web

from csuhub.web.app import make_app
from csuhub.web.requests import CLIENT_FAULTS, describe_fault

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)


class ClientFaults(logging.Filter):
    """aiohttp logs a request it cannot parse as ``ERROR Error handling request`` with
    a traceback (and a body it cannot decode as ``Unhandled exception``): hostile
    or broken input on a public port, not a fault of the hub. They become one
    INFO line naming the peer and the fault; anything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, CLIENT_FAULTS):
            if not logging.getLogger(record.name).isEnabledFor(logging.INFO):
                return False
            args = record.args if isinstance(record.args, tuple) else ()
            record.msg = "web: refused a malformed request from %s: %s"
            record.args = (args[0] if args else "a client", describe_fault(fault))
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


#: the logger of the web server's connections (``RequestHandler``'s ``logger``)
HTTP_LOGGER = logging.getLogger("csuhub.web.http")
HTTP_LOGGER.addFilter(ClientFaults())


async def serve(hub: Hub, stack: AsyncExitStack) -> WebServer:
    """Start the hub's web server on ``hub.web`` (host, port) and stop it with ``stack``."""
    settings = hub.config.hub["web"]
    server = WebServer(hub, settings["host"], settings["port"])
    await server.start()
    stack.push_async_callback(server.stop)
    return server


class WebServer:
    def __init__(self, hub: Hub, host: str, port: int) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        #: the application served (for its routes' declarations: OpenAPI, tests)
        self.app: web.Application | None = None

    async def start(self) -> None:
        app = make_app(self.hub)
        self.app = app
        # auto_decompress off: no client of this API compresses its body, and one
        # that does is refused whole by the app (415) instead of failing half-way in
        # the HTTP parser, or expanding a gzip bomb
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            logger=HTTP_LOGGER,
            auto_decompress=False,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise OSError(f"cannot listen on {self.host}:{self.port}: {err.strerror}") from err
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = int(port)
        shown = f"[{host}]" if ":" in str(host) else host
        self.url = f"http://{shown}:{self.port}"
        _LOGGER.info("web: listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
