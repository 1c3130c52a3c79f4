"""The panel's masks pages: privacy masks drawn on a snapshot, lift requests
and their approvals (see docs/panel.md)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
