"""Which class an audited action belongs to, for retention and the ethics figures.

The class is stored with each entry (and covered by its hash), so a later
change of this table never rewrites history. Exact names win over prefixes;
an action matching nothing is ``admin``. docs/audit.md lists the table.
"""

from __future__ import annotations

CLASSES = ("consultation", "extraction", "access", "admin")

#: exact action names
ACTIONS: dict[str, str] = {
    "recording.view": "consultation",
    "recording.frame": "consultation",
    "recording.segment": "consultation",
    "camera.snapshot": "consultation",
    "recording.export": "extraction",
    "login": "access",
    "login.failed": "access",
    "login.locked": "access",
    "logout": "access",
    "access.refused": "access",
}

#: prefixes, longest first
PREFIXES: tuple[tuple[str, str], ...] = (
    ("playback.", "consultation"),
    ("live.", "consultation"),
    ("frame.", "consultation"),
    ("snapshot.", "consultation"),
    ("export.", "extraction"),
    ("requisition.", "extraction"),
    ("session.", "access"),
    ("login.", "access"),
    ("auth.", "access"),
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
