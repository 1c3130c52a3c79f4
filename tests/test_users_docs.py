"""docs/security.md's roles table is the one in csuhub/security/permissions.py."""

from __future__ import annotations

import re
from pathlib import Path

from csuhub.security.permissions import PERMISSIONS, ROLES, SHIPPED_ROLES

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


def roles_table() -> str:
    """The table as docs/security.md holds it (paste this when roles change)."""
    columns = [*SHIPPED_ROLES, *(r for r in ROLES if r not in SHIPPED_ROLES)]
    lines = [
        "| permission | " + " | ".join(columns) + " | what it allows |",
        "| --- | " + " | ".join("---" for _ in columns) + " | --- |",
    ]
    for permission, meaning in PERMISSIONS.items():
        marks = " | ".join("✓" if permission in ROLES[r] else " " for r in columns)
        lines.append(f"| `{permission}` | {marks} | {meaning} |")
    return "\n".join(lines)


def test_the_documented_roles_are_the_code_s() -> None:
    found = re.search(
        r"<!-- roles-table -->\n(.*?)\n?<!-- /roles-table -->", DOC.read_text("utf-8"), re.S
    )
    assert found is not None, "docs/security.md lost its roles-table markers"
    assert found.group(1).strip() == roles_table(), "paste roles_table() into docs/security.md"
