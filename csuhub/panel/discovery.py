"""The panel's discovery and adoption page, for administrators
(``camera.adopt``): the cameras the discovery sources found, and their
adoption into the register with their prefectoral authorisation (see
docs/panel.md).

The page lists what the register holds when it opens; "scan now" and the
adoption go through ``POST /api/discovery/scan`` and
``POST /api/cameras/{id}/adopt`` from the page's module (the same
validation and audit as every client), which reads ``GET /api/discovery``
every second while a scan runs, so cameras appear as they answer rather than
when the scan ends. The panel itself never probes a network: only the
sources the site file names do.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, _, page
from csuhub.web.declare import endpoint
from csuhub.web.requests import hub_of

routes = web.RouteTableDef()

#: a discovered camera's state as people read it
STATE_LABELS = {
    "discovered": _("No driver for it"),
    "pending_adoption": _("Ready to adopt"),
}
#: how long a scan listens, in seconds (the API takes 0.1 to 30)
SCAN_TIMES = (3, 10, 30)


def discovered(rows: list[Any]) -> list[dict[str, Any]]:
    """The register's discovered cameras, not yet adopted, as ``/api/discovery``
    lists them."""
    return [row.as_dict() for row in rows if row.origin == "discovered"]


@routes.get("/panel/discovery")
@endpoint(
    "camera.adopt",
    tags=("panel",),
    params=(LANG,),
    responses={200: ("The cameras found, and their adoption", HTML, None)},
)
async def discovery_page(request: web.Request) -> web.Response:
    """Discovered cameras waiting for adoption, the sources, the adoption form."""
    hub = hub_of(request)
    return page(
        request,
        "discovery/index.html",
        {
            "cameras": discovered(await hub.store.list_cameras()),
            "sources": sorted(hub.discovery.sources),
            "last_scan": hub.discovery.last_scan,
            "districts": list(hub.config.hub["districts"]),
            "state_labels": STATE_LABELS,
            "scan_times": SCAN_TIMES,
        },
    )
