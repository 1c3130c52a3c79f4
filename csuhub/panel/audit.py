"""The panel's audit and ethics pages, for the ethics committee's auditors
(``audit.read``): the trail searched and exported, the chain checked, the
figures drawn (see docs/panel.md).

No page here shows, links to or names an image: an auditor holds no video
permission, and the pages must not even carry a video URL for a browser to
try. The search and the export go through ``/api/audit`` and
``/api/audit/export`` from the page's module, so that reading the trail is
audited exactly as for any other client; the figures are read with the same
functions as ``/api/ethics/summary`` and ``/api/requisitions/stats``.

The chain check is ``csuhub audit verify``'s, on its own read-only SQLite
connection in a worker thread: a trail of millions of entries takes seconds,
which must block neither the event loop nor the store's thread that every
other request waits on. Its result is kept a short while (one walk at a
time), so reloading the page does not start another; "check now" does.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from csuhub.audit.actions import OUTCOMES
from csuhub.audit.anchors import AnchorError, anchored, read_anchors
from csuhub.audit.ethics import figures
from csuhub.panel.pages import LANG
from csuhub.panel.render import HTML, _, page
from csuhub.store.audit import verify
from csuhub.web.declare import Param, endpoint
from csuhub.web.ethics import MAX_LIMIT, MAX_TEXT, QueryError, parse_summary
from csuhub.web.requests import hub_of

routes = web.RouteTableDef()

#: how long a chain check's result is shown before the page runs another
CHECK_TTL = 60.0
#: the form's times: what ``<input type="datetime-local">`` sends
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIMIT = re.compile(r"[0-9]{1,5}")
TEXT_FIELDS = ("actor", "action", "target")
#: the audit's outcomes as people read them
OUTCOME_LABELS = {
    "started": _("Started"),
    "ok": _("Done"),
    "refused": _("Refused"),
    "failed": _("Failed"),
}
#: the figures' keys (states, outcomes, decisions) as people read them; a key
#: not here (a role, a district, a stated reason) is shown as it is
LABELS = {
    "requested": _("Requested"),
    "held": _("Footage held"),
    "exported": _("Exported"),
    "delivered": _("Delivered"),
    "closed": _("Closed"),
    "helped": _("Helped the inquiry"),
    "not_helped": _("Did not help"),
    "unknown": _("Not known"),
    "(none)": _("(none stated)"),
    "approved": _("Approved"),
    "refused": _("Refused"),
    "expired": _("Expired"),
    "ended": _("Ended"),
}
TIME_FIELDS = ("from", "to")


@dataclass(frozen=True)
class Filters:
    """The search form's values from the page's URL (a shared or bookmarked
    search), each one checked; what failed is named in ``errors`` and left
    out, so the form opens with only what the API would accept."""

    values: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


def search_filters(query: Mapping[str, str]) -> Filters:
    """The form's fields from ``query``: actor, action, target (1 to 200
    printable characters), from and to (``2026-11-29T10:00``, the hub's zone),
    outcome (one of the audit's) and limit (1 to 10 000). Anything else in the
    query (``lang``) is not the form's and is ignored."""
    values: dict[str, str] = {}
    errors: list[str] = []
    for key in TEXT_FIELDS:
        text = query.get(key)
        if text is None or text == "":
            continue
        if len(text) > MAX_TEXT or _CONTROL.search(text):
            errors.append(key)
        else:
            values[key] = text
    for key in TIME_FIELDS:
        text = query.get(key)
        if text is None or text == "":
            continue
        if _LOCAL_TIME.fullmatch(text) is None or not _valid_time(text):
            errors.append(key)
        else:
            values[key] = text
    outcome = query.get("outcome")
    if outcome:
        if outcome in OUTCOMES:
            values["outcome"] = outcome
        else:
            errors.append("outcome")
    limit = query.get("limit")
    if limit:
        if _LIMIT.fullmatch(limit) and 1 <= int(limit) <= MAX_LIMIT:
            values["limit"] = str(int(limit))
        else:
            errors.append("limit")
    if "from" in values and "to" in values and values["to"] <= values["from"]:
        errors.append("to")
        del values["to"]
    return Filters(values, tuple(errors))


def _valid_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass
class ChainCheck:
    """One walk of the chain: its report (``VerifyReport.as_dict()``) and when."""

    checked_at: float
    report: dict[str, Any]
    #: when the walk began: a check asked for after that cannot use it
    started_at: float = 0.0


class ChainChecks:
    """The last check per database, and the lock that keeps it to one walk."""

    def __init__(self) -> None:
        self.last: dict[Path, ChainCheck] = {}
        self.lock = asyncio.Lock()

    async def status(self, database: Path, data_dir: Path, *, fresh: bool) -> ChainCheck:
        """The last check if still young (``fresh``: if it began after this
        request came): requests that queue for "check now" behind a walk share
        the next one instead of each walking the chain again."""
        asked = time.time()
        async with self.lock:
            kept = self.last.get(database)
            if kept is not None:
                age = time.time() - kept.checked_at
                if kept.started_at >= asked or (not fresh and age < CHECK_TTL):
                    return kept
            began = time.time()
            report = await asyncio.to_thread(check_chain, database, data_dir)
            done = ChainCheck(time.time(), report, began)
            self.last[database] = done
            return done


#: per hub (tests run several in one process), forgotten with it
_CHECKS: weakref.WeakKeyDictionary[Any, ChainChecks] = weakref.WeakKeyDictionary()


def check_chain(database: Path, data_dir: Path) -> dict[str, Any]:
    """``csuhub audit verify``: the anchors, then the chain on a read-only
    connection of its own (one consistent snapshot of the table)."""
    try:
        anchors = anchored(read_anchors(data_dir))
    except AnchorError as err:
        broken = {"id": None, "kind": "anchor", "message": str(err)}
        return {"ok": False, "entries": 0, "broken": broken}
    uri = f"{database.resolve().as_uri()}?mode=ro"  # the path quoted: a ? or # in it stays a path
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        return verify(conn, anchors, None).as_dict()
    finally:
        conn.close()


def _checks(request: web.Request) -> ChainChecks:
    hub = hub_of(request)
    found = _CHECKS.get(hub)
    if found is None:
        found = _CHECKS[hub] = ChainChecks()
    return found


_FILTER_PARAMS = (
    LANG,
    *(Param(k, {"type": "string"}, description=f"the search's {k}") for k in TEXT_FIELDS),
    Param("from", {"type": "string"}, description="entries at or after (hub's zone)"),
    Param("to", {"type": "string"}, description="entries before (hub's zone)"),
    Param("outcome", {"enum": list(OUTCOMES)}, description="only entries with this outcome"),
    Param("limit", {"type": "string"}, description=f"newest entries shown, 1 to {MAX_LIMIT}"),
    Param("check", {"enum": ["now"]}, description="check the chain again now"),
)


@routes.get("/panel/audit")
@endpoint(
    "audit.read",
    tags=("panel",),
    params=_FILTER_PARAMS,
    responses={200: ("The audit search and the chain's status", HTML, None)},
)
async def audit_page(request: web.Request) -> web.Response:
    """The audit search (run by the page's module through ``/api/audit``), its
    CSV export, and the chain's status."""
    hub = hub_of(request)
    filters = search_filters(request.query)
    fresh = request.query.get("check") == "now"
    check = await _checks(request).status(hub.store.path, hub.data_dir, fresh=fresh)
    return page(
        request,
        "audit/search.html",
        {"filters": filters.values, "errors": filters.errors, "outcomes": OUTCOMES,
         "check": check, "max_limit": MAX_LIMIT, "outcome_labels": OUTCOME_LABELS},
    )  # fmt: skip


@routes.get("/panel/audit/ethics")
@endpoint(
    "audit.read",
    tags=("panel",),
    params=(
        LANG,
        Param("from", {"type": "string"}, description="start of the period (default: 30 days)"),
        Param("to", {"type": "string"}, description="end of the period, excluded (default: now)"),
    ),
    responses={200: ("The ethics committee's figures, as charts and tables", HTML, None)},
)
async def ethics_page(request: web.Request) -> web.Response:
    """The figures of ``/api/ethics/summary`` and ``/api/requisitions/stats``,
    read by the same functions: tables on the page, drawn as charts by its
    module."""
    hub = hub_of(request)
    now = time.time()
    tz = str(hub.config.hub["timezone"])
    asked = [(k, v) for k, v in request.query.items() if k in ("from", "to") and v]
    error = None
    try:
        start, end = parse_summary(asked, tz, now)
    except QueryError as err:
        error = str(err)
        start, end = parse_summary([], tz, now)
    cap = float(hub.retention.cap()[0])
    data = await hub.store.call(figures, start, end, cap, now)
    stats = await hub.store.requisitions.stats()
    return page(
        request,
        "audit/ethics.html",
        {"f": data, "stats": stats, "start": start, "end": end, "error": error,
         "asked": dict(asked), "labels": LABELS},
    )  # fmt: skip
