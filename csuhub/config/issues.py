"""One configuration problem, located and explained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csuhub.config.nodes import Mark

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class ConfigIssue:
    """Printed as ``file:line:col: key.path: message (hint)``."""

    message: str
    path: tuple[Any, ...] = ()
    mark: Mark | None = None
    hint: str | None = None
    severity: str = ERROR
    #: the blueprint instance that produced the value, when the mark is in a blueprint
    via: Mark | None = None

    @property
    def key_path(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out

    def __str__(self) -> str:
        where = str(self.mark) if self.mark else "<config>"
        level = "warning: " if self.severity == WARNING else ""
        text = (
            f"{where}: {level}{self.key_path}: {self.message}"
            if self.path
            else (f"{where}: {level}{self.message}")
        )
        text = f"{text} ({self.hint})" if self.hint else text
        if self.via is not None and (
            self.mark is None or self.via.file != self.mark.file or self.via.line != self.mark.line
        ):
            text += f" [in the blueprint instance at {self.via}]"
        return text

    def sort_key(self) -> tuple[str, int, int]:
        if self.mark is None:
            return ("", 0, 0)
        return (self.mark.file, self.mark.line, self.mark.column)

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "file": self.mark.file if self.mark else None,
            "line": self.mark.line if self.mark else None,
            "column": self.mark.column if self.mark else None,
            "path": self.key_path,
            "message": self.message,
            "hint": self.hint,
            "via": str(self.via) if self.via else None,
        }


class ConfigInvalid(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues
