"""Mounting the panel on the hub's aiohttp application."""

from __future__ import annotations

from aiohttp import web

from csuhub.panel import (
    admin,
    audit,
    cameras,
    discovery,
    incidents,
    masks,
    pages,
    playback,
    requisitions,
    transparency,
    wall,
)
from csuhub.panel.render import setup
from csuhub.web.requests import with_expect

#: every area's route table, in the navigation's order
AREAS = (
    pages, wall, cameras, playback, incidents, requisitions, discovery, audit, masks, admin,
)  # fmt: skip


def install(app: web.Application) -> None:
    """The panel's templates and routes, and the public transparency page."""
    setup(app)
    for area in (*AREAS, transparency):
        app.router.add_routes(with_expect(area.routes))
