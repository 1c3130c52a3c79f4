"""Starts and stops the web app with AppRunner/TCPSite (never ``run_app``,
which would take over the event loop the hub owns)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from csuhub.web.app import make_app

if TYPE_CHECKING:
    from csuhub.hub import Hub

_LOGGER = logging.getLogger(__name__)


class WebServer:
    def __init__(self, hub: Hub, host: str, port: int) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> None:
        app = make_app(self.hub)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
