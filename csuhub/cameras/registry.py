"""Moved: the camera manager is :mod:`csuhub.cameras.manager` (``CameraManager``;
"registry" is ``csuhub.registry``, the plugin specs), adoption
:mod:`csuhub.cameras.adoption`, health checks :mod:`csuhub.cameras.health`, the
states :mod:`csuhub.cameras.model`.

A re-export kept only while ``csuhub/hub.py`` (``CameraRegistry``) and
``csuhub/cli/cameras.py`` (``AdoptionError``, ``CameraEntry``) import from here,
and docs/architecture.md names this file; remove it once they are updated.
"""

from csuhub.cameras.health import MAX_HEALTH_BACKOFF
from csuhub.cameras.manager import CameraManager
from csuhub.cameras.model import AdoptionError, CameraEntry

CameraRegistry = CameraManager

__all__ = [
    "MAX_HEALTH_BACKOFF",
    "AdoptionError",
    "CameraEntry",
    "CameraManager",
    "CameraRegistry",
]
