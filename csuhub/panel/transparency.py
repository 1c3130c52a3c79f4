"""The panel's transparency pages (see docs/panel.md)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
