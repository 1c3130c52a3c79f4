"""What of a logbook line a reader limited to some cameras may see.

The logbook is read by the whole room, but a reader scoped to a district must
learn no more of the other cameras here than the API that owns each record
tells them, or the logbook would be a side door:

- a line *about* a camera (its target is one: failures, returns, exports, mask
  lifts) is shown only when that camera is in scope;
- an incident is visible to every reader, its cameras are not (the incidents
  API leaves out cameras and bookmarks outside the scope): a camera link line
  keeps only the cameras in scope and is left out when none remains, a
  bookmark line on a camera out of scope is left out, and any other incident
  line that lists cameras shows only those in scope;
- a requisition holding any camera outside the scope does not exist for the
  reader (the requisitions API answers 404), so none of its lines is shown:
  the cameras a line names and, for a line about ``requisition:<id>``, the
  requisition's own cameras must all be in scope. When the requisition's
  cameras cannot be known the line is left out (fail closed).

Any other line naming a camera (a ``camera`` or ``camera_id`` parameter) out of
scope is left out, and a list of cameras in it is cut to those in scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

Visible = Callable[[str], Awaitable[bool]]
#: a requisition's cameras by its id; None when there is no such requisition
RequisitionCameras = Callable[[int], Awaitable[list[str] | None]]

#: actions whose target is a camera
CAMERA_TARGET_ACTIONS = frozenset(
    {
        "camera.offline",
        "camera.online",
        "recording.export",
        "mask.lift.request",
        "mask.lift.approve",
        "mask.lift.refuse",
        "mask.lift.end",
        "mask.lift.expire",
    }
)
LINK = "incident.camera_link"
#: parameters that name one camera
CAMERA_KEYS = ("camera", "camera_id")
#: parameters that list cameras (ids, or objects with an ``id``)
CAMERA_LISTS = ("cameras", "out_of_scope")


def _camera_of(item: Any) -> str | None:
    if isinstance(item, Mapping):
        item = item.get("id", item.get("camera_id"))
    return item if isinstance(item, str) else None


def _named(params: Mapping[str, Any]) -> list[str]:
    """Every camera a line's parameters name."""
    found = [params[k] for k in CAMERA_KEYS if isinstance(params.get(k), str)]
    for key in CAMERA_LISTS:
        listed = params.get(key)
        if isinstance(listed, list):
            found.extend(c for c in (_camera_of(i) for i in listed) if c is not None)
    per_camera = params.get("past_age_segments")  # requisition.release, keyed by camera
    if isinstance(per_camera, Mapping):
        found.extend(str(k) for k in per_camera)
    return found


def _requisition_id(target: Any) -> int | None:
    text = str(target or "")
    if not text.startswith("requisition:"):
        return None
    number = text.partition(":")[2]
    return int(number) if number.isascii() and number.isdigit() and len(number) <= 18 else -1


class Scope:
    """One reader's camera scope over one read (each camera asked once)."""

    def __init__(
        self, visible: Visible | None, requisition_cameras: RequisitionCameras | None = None
    ) -> None:
        self._visible = visible
        self._requisition_cameras = requisition_cameras
        self._seen: dict[str, bool] = {}
        self._requisitions: dict[int, bool] = {}

    @property
    def everything(self) -> bool:
        return self._visible is None

    async def sees(self, camera: str) -> bool:
        if self._visible is None:
            return True
        if camera not in self._seen:
            self._seen[camera] = await self._visible(camera)
        return self._seen[camera]

    async def sees_all(self, cameras: Iterable[str]) -> bool:
        for camera in cameras:
            if not await self.sees(camera):
                return False
        return True

    async def _sees_requisition(self, req_id: int) -> bool:
        if req_id not in self._requisitions:
            cameras = None
            if req_id > 0 and self._requisition_cameras is not None:
                cameras = await self._requisition_cameras(req_id)
            self._requisitions[req_id] = cameras is not None and await self.sees_all(cameras)
        return self._requisitions[req_id]

    async def _cut(self, listed: Any) -> Any:
        if not isinstance(listed, list):
            return listed
        kept = []
        for item in listed:
            camera = _camera_of(item)
            if camera is None or await self.sees(camera):
                kept.append(item)
        return kept

    async def params(
        self, action: str, target: Any, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The parameters the reader may see of a line, or None: the line is
        not for them."""
        shown = dict(params)
        if self._visible is None:
            return shown
        if action in CAMERA_TARGET_ACTIONS and target and not await self.sees(str(target)):
            return None
        if action.startswith("requisition."):
            req_id = _requisition_id(target)
            if not await self.sees_all(_named(params)):
                return None
            if req_id is not None and not await self._sees_requisition(req_id):
                return None
            return shown
        for key in CAMERA_KEYS:
            camera = params.get(key)
            if isinstance(camera, str) and not await self.sees(camera):
                return None
        listed_any = False
        for key in CAMERA_LISTS:
            if isinstance(params.get(key), list) and params[key]:
                listed_any = True
                shown[key] = await self._cut(params[key])
        if (
            action == LINK
            and listed_any
            and not any(shown.get(k) for k in (*CAMERA_LISTS, *CAMERA_KEYS))
        ):
            return None
        return shown
