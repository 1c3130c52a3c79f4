"""What changed between two validated configurations, so a reload can apply
only that: adding a camera must not restart the recording of the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Sections whose changes need a restart (the web listener, which plugins load,
#: the call lines: a SIP socket is not rebound under a live call).
RESTART_SECTIONS = ("hub", "plugins", "call_lines")


@dataclass(frozen=True)
class KeyedDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


@dataclass(frozen=True)
class ConfigDiff:
    sections: list[str]
    cameras: KeyedDiff
    discovery: KeyedDiff
    restart_required: list[str]

    @property
    def empty(self) -> bool:
        return not self.sections

    def as_dict(self) -> dict[str, Any]:
        return {
            "sections": self.sections,
            "cameras": self.cameras.as_dict(),
            "discovery": self.discovery.as_dict(),
            "restart_required": self.restart_required,
        }


def keyed_diff(old: list[dict[str, Any]], new: list[dict[str, Any]], key: str) -> KeyedDiff:
    before = {item[key]: item for item in old}
    after = {item[key]: item for item in new}
    return KeyedDiff(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    )


def diff_config(old: dict[str, Any], new: dict[str, Any]) -> ConfigDiff:
    sections = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ConfigDiff(
        sections=sections,
        cameras=keyed_diff(old.get("cameras", []), new.get("cameras", []), "id"),
        discovery=keyed_diff(old.get("discovery", []), new.get("discovery", []), "source"),
        restart_required=[s for s in sections if s in RESTART_SECTIONS],
    )
