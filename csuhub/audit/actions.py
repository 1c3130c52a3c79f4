"""Which class an audited action belongs to, for retention and the ethics figures.

The class is stored with each entry (and covered by its hash), so a later
change of this table never rewrites history. Exact names win over prefixes;
an action matching nothing is ``admin``. docs/audit.md lists the table.
"""

from __future__ import annotations

CLASSES = ("consultation", "extraction", "access", "operation", "admin")

#: exact action names
ACTIONS: dict[str, str] = {
    "recording.view": "consultation",
    "recording.frame": "consultation",
    "recording.segment": "consultation",
    "camera.snapshot": "consultation",
    "recording.export": "extraction",
    "login": "access",
    "logout": "access",
    "access.refused": "access",
    "camera.offline": "operation",
    "camera.online": "operation",
}

#: prefixes of families of actions the hub writes (an action added to a family
#: is classed with it; one that starts a new family gets its line here)
PREFIXES: tuple[tuple[str, str], ...] = (
    # watching live video: live.start and live.stop per viewer (csuhub.web.live)
    ("live.", "consultation"),
    ("requisition.", "extraction"),
    ("session.", "access"),
    ("login.", "access"),
    # the centre's work: calls received, incidents opened, linked, annotated, closed
    ("incident.", "operation"),
    ("call.", "operation"),
    # the shift's journal, and the cameras failing and returning it records
    ("logbook.", "operation"),
    # the wall: layouts set, cameras pushed, screens pinned, spotlights and reverts
    ("wall.", "operation"),
)

OUTCOMES = ("started", "ok", "refused", "failed")


def classify(action: str) -> str:
    """The class of ``action`` (``admin`` when nothing names it)."""
    found = ACTIONS.get(action)
    if found is not None:
        return found
    for prefix, cls in PREFIXES:
        if action.startswith(prefix):
            return cls
    return "admin"
