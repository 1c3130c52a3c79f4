"""Routes of the calllines API (issue 13; being built)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
