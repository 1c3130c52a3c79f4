"""Bundled video-wall layouts: ``grid``, ``carousel``, ``one_plus_5``,
``one_plus_7``, ``one_plus_12`` (and ``one_plus_n`` with an option ``n``),
``spotlight`` and its alias ``incident_spotlight``.

They register through ``register_wall_layouts`` like any third-party layout
and import nothing but ``csuhub.api``: a layout places tiles and names their
sources, and the wall manager resolves and pushes them. Layout names are site
file identifiers (slugs), hence ``one_plus_5`` for the 1+5 of VMS catalogues.
See docs/layouts.md for the arrangements, the options and a layout plugin of
your own.
"""

from __future__ import annotations

from typing import Any

from csuhub.api import WallLayoutSpec, hookimpl

from . import options as opts
from .layouts import Carousel, Grid, OnePlusN, Spotlight, one_plus_factory

__all__ = ["Carousel", "Grid", "OnePlusN", "Spotlight", "register_wall_layouts"]


@hookimpl
def register_wall_layouts(hub: Any) -> list[WallLayoutSpec]:
    specs = [
        WallLayoutSpec(
            name="grid",
            factory=Grid,
            config_schema=opts.GRID_SCHEMA,
            description="columns x rows equal tiles; cameras beyond them rotate every dwell",
        ),
        WallLayoutSpec(
            name="carousel",
            factory=Carousel,
            config_schema=opts.CAROUSEL_SCHEMA,
            description="one tile (or columns x rows) cycling through the cameras, dwell each",
        ),
        WallLayoutSpec(
            name="one_plus_n",
            factory=OnePlusN,
            config_schema=opts.one_plus_schema(None),
            description="one big tile and n small ones (n: 5, 7 or 12)",
        ),
    ]
    specs += [
        WallLayoutSpec(
            name=f"one_plus_{n}",
            factory=one_plus_factory(n),
            config_schema=opts.one_plus_schema(n),
            description=f"1+{n}: one big tile and {n} small ones",
        )
        for n in (5, 7, 12)
    ]
    spotlight = "an incident's nearest cameras, the nearest in the biggest tile"
    specs += [
        WallLayoutSpec(
            name="spotlight",
            factory=Spotlight,
            config_schema=opts.SPOTLIGHT_SCHEMA,
            description=spotlight,
        ),
        WallLayoutSpec(
            name="incident_spotlight",
            factory=Spotlight,
            config_schema=opts.SPOTLIGHT_SCHEMA,
            description=f"alias of spotlight: {spotlight}",
        ),
    ]
    return specs
