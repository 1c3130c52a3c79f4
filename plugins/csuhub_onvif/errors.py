"""How one ONVIF operation fails: a named operation and a message an operator
can act on, never the library's traceback. A camera that answers garbage to one
operation (ipycam's PTZ presets do) fails that operation only."""

from __future__ import annotations

from csuhub.api import PtzUnsupported


class OnvifOperationError(Exception):
    """One ONVIF operation failed; the camera and the other operations are fine."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation


class NoPtzProfile(OnvifOperationError, PtzUnsupported):
    """The camera has no media profile with a PTZ configuration: it cannot move."""


def explain(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    lowered = text.lower()
    if "not authorized" in lowered or "notauthorized" in lowered or "401" in lowered:
        return "unauthorized: the camera refused the credentials"
    if "connect" in lowered and ("refused" in lowered or "cannot" in lowered):
        return f"connection refused ({text[:200]})"
    return f"{type(err).__name__}: {text[:300]}"
