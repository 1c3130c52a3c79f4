"""Routes of the live web API (issue 14; being built)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
