"""Which masks a picture leaving the hub gets: the camera's effective masks,
unless a lift is in force for that kind of use.

A camera's effective masks are those its site-file entry declares plus those
drawn through the API (the store), both always: the API cannot remove a mask
the site file declares. The answer is a :class:`MaskPlan`, the one object the
export, the playback, the frame and snapshot handlers and (issue 14) the live
transcode consult, so they cannot disagree about whether a picture is masked.
Three plans, one per use: :func:`picture_plan` (a snapshot, a timeline frame:
a lift naming no requisition unmasks them), :func:`playback_plan` (played
footage and raw segment files: no lift unmasks them, since a lift carries no
footage window and would open the camera's whole history) and
:func:`export_plan` (a lift naming the export's requisition unmasks it).

Fail closed: a command run without the site file reads the site masks the hub
recorded (:func:`remember_site_masks`, at start and after each reload); when
none were ever recorded it refuses (:class:`MasksUnknown`) rather than
treating the camera as unmasked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csuhub.masks import lifts
from csuhub.masks.apply import MaskingFailed
from csuhub.masks.ffmpeg import EXPORT_ENCODER, MASK_COLOUR, filter_graph
from csuhub.masks.model import Mask, site_masks

if TYPE_CHECKING:
    from csuhub.services import HubServices
    from csuhub.store import Store


@dataclass(frozen=True)
class MaskPlan:
    """What applies to one camera's pictures now."""

    camera_id: str
    #: every mask in force on the camera (whether or not lifted)
    masks: tuple[Mask, ...]
    #: the approved lift that unmasks these pictures, if any
    lift: dict[str, Any] | None = None

    @property
    def apply(self) -> tuple[Mask, ...]:
        """The masks to paint: none under a lift."""
        return () if self.lift is not None else self.masks

    def manifest(self, width: int | None = None, height: int | None = None) -> dict[str, Any]:
        """What an export's manifest says about masking (``privacy_masks``)."""
        data: dict[str, Any] = {
            "applied": bool(self.apply),
            "masks": [m.as_dict() for m in self.masks],
        }
        if self.apply and width and height:
            data |= {
                "filter": filter_graph(width, height),
                "colour": MASK_COLOUR,
                "resolution": [width, height],
                "encoder": " ".join(EXPORT_ENCODER),
            }
        if self.lift is not None:
            data["lift"] = {
                k: self.lift.get(k)
                for k in ("id", "reason", "requested_by", "decided_by", "decided_at", "expires_at")
            }
        return data


async def drawn_masks(store: Store, camera_id: str) -> list[Mask]:
    return [
        Mask(
            name=row["name"],
            polygon=tuple((float(x), float(y)) for x, y in row["polygon"]),
            source="api",
            id=row["id"],
            created_by=row["created_by"],
            created_at=row["created_at"],
        )
        for row in await store.masks.drawn(camera_id)
    ]


#: the site file's masks as the hub last read them, for commands run without it
SITE_META = "privacy_masks.site"


class MasksUnknown(MaskingFailed):
    """Run without the site file on a data directory where no hub ever recorded
    the site file's masks: which cameras are masked is unknown."""


def _declared(hub: HubServices) -> dict[str, list[dict[str, Any]]]:
    return {
        camera.id: [m.as_dict() for m in site_masks([camera], camera.id)]
        for camera in hub.config.settings.cameras
        if camera.privacy_masks
    }


async def remember_site_masks(hub: HubServices) -> None:
    """Record the site file's masks in the store (when they changed), so that a
    command given only the data directory (``csuhub export --data``) still
    masks what the site file declares. Called at hub start
    (``csuhub.security.lifespan``), after each successful reload
    (``csuhub.reload``) and before each export made with the site file."""
    if hub.source == "<none>":
        return
    text = json.dumps(_declared(hub), sort_keys=True)
    if await hub.store.get_meta(SITE_META) != text:
        await hub.store.set_meta(SITE_META, text)


async def effective_masks(hub: HubServices, camera_id: str) -> tuple[Mask, ...]:
    """The site file's masks of the camera (as last recorded, for a hub made
    without its site file: ``MasksUnknown`` when none were ever recorded), then
    the drawn ones."""
    if hub.source == "<none>":
        text = await hub.store.get_meta(SITE_META)
        if text is None:
            raise MasksUnknown(
                "the privacy masks are unknown (no hub has recorded its site file's masks "
                "in this data directory): give -c SITE"
            )
        recorded = json.loads(text)
        declared = [
            Mask(m["name"], tuple((float(x), float(y)) for x, y in m["polygon"]), "site")
            for m in recorded.get(camera_id, [])
        ]
    else:
        declared = site_masks(hub.config.settings.cameras, camera_id)
    return (*declared, *await drawn_masks(hub.store, camera_id))


async def picture_plan(hub: HubServices, camera_id: str) -> MaskPlan:
    """For a snapshot or a timeline frame: masked unless a lift naming no
    requisition is in force on the camera."""
    masks = await effective_masks(hub, camera_id)
    lift = await lifts.in_force(hub.store, camera_id) if masks else None
    return MaskPlan(camera_id, masks, lift)


async def playback_plan(hub: HubServices, camera_id: str) -> MaskPlan:
    """For played footage (``play.mp4``) and raw segment files: always masked.
    A picture lift is approved for a moment's pictures; it names no footage
    window, so honouring it here would open the camera's whole history to
    everyone in scope while it runs."""
    return MaskPlan(camera_id, await effective_masks(hub, camera_id))


async def export_plan(
    hub: HubServices, camera_id: str, requisition_id: int | None = None
) -> MaskPlan:
    """For an evidence export: masked, unless the export is a requisition's and
    a lift naming that requisition is in force on the camera. Once the cut is
    made, :func:`lift_held` says whether the lift still is."""
    if hub.source != "<none>":
        await remember_site_masks(hub)  # a CLI export with -c SITE keeps them current
    masks = await effective_masks(hub, camera_id)
    lift = None
    if masks and requisition_id is not None:
        lift = await lifts.in_force(hub.store, camera_id, requisition_id)
    return MaskPlan(camera_id, masks, lift)


async def lift_held(hub: HubServices, plan: MaskPlan, *, now: float | None = None) -> bool:
    """Whether the lift ``plan`` was made under is still in force: asked once an
    unmasked cut is made, before it is kept. A lift ended or expired during
    the cut did not cover all of it, so the caller discards the cut and fails
    the export (its failure entry is the audit). True for a plan under no lift.
    An export takes minutes at most, a lift runs 1 min to 2 h, and a lift ends
    for good (it is never approved again): still in force at the end means in
    force throughout."""
    if plan.lift is None:
        return True
    moment = time.time() if now is None else now
    await lifts.expire(hub.store, now=moment)  # an overdue one is expired (and audited) first
    current = await hub.store.masks.lift(plan.lift["id"])
    return (
        current is not None
        and current["status"] == "approved"
        and float(current["expires_at"]) > moment
    )
