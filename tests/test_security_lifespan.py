"""The security model's background work runs with the hub, web server or not:
mask lifts end on time, the audit chain's head is anchored at stop, and the
site file's privacy masks are recorded at start and at each reload for the
commands run without the site file (which refuse when none were recorded)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from csuhub.audit.anchors import anchor_dir
from csuhub.hub import Hub
from csuhub.masks import lifts
from csuhub.masks.policy import MasksUnknown, export_plan
from csuhub.security.permissions import ROLES, CameraScope, Principal
from csuhub.testing import make_hub


def _person(name: str, role: str) -> Principal:
    return Principal(name, "user", (role,), ROLES[role], CameraScope.of(["*"]))


async def test_a_hub_without_web_expires_lifts_and_anchors_its_audit(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    past = time.time() - 7200
    async with make_hub(data, web=False) as hub:
        asked = await lifts.request_lift(
            hub.store,
            _person("ana", "operator"),
            "cam-1",
            {"reason": "a door left open", "duration": 900},
            now=past,
        )
        approved = await lifts.decide(
            hub.store, _person("bob", "supervisor"), asked["id"], True, now=past + 1
        )
        assert approved["status"] == "approved"  # in the past: due, not yet swept
    anchors = sorted(anchor_dir(data).iterdir())
    assert anchors, "the stop wrote no anchor"
    async with make_hub(data, web=False) as hub:
        deadline = time.monotonic() + 10
        while (await hub.store.masks.lift(asked["id"]))["status"] != "expired":
            assert time.monotonic() < deadline, "the hub's sweep did not expire the lift"
            await asyncio.sleep(0.05)
        actions = [r.action for r in await hub.store.audit_records(limit=50)]
        assert "mask.lift.expire" in actions
    assert len(list(anchor_dir(data).iterdir())) > len(anchors)


AUTH = "authorization: {reference: A-1, issued: 2022-01-10, expires: 2099-01-09}"
SQUARE = "[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]"


def _masked_camera(camera_id: str, mask: str) -> str:
    return (
        f"  - id: {camera_id}\n    driver: simcam\n    enabled: false\n    {AUTH}\n"
        f"    privacy_masks: [{{name: {mask}, polygon: {SQUARE}}}]\n"
    )


def _write_site(path: Path, *cameras: str) -> None:
    path.write_text("hub:\n  name: Masks\ncameras:\n" + "".join(cameras))


async def _offline_plan_masks(data: Path, camera_id: str) -> list[str]:
    """What ``csuhub export --data`` (no site file) would mask ``camera_id`` with."""
    hub = Hub({}, source="<none>", data_dir=data, web=False)
    hub.setup()
    await hub.store.open()
    try:
        return [m.name for m in (await export_plan(hub, camera_id)).masks]
    finally:
        await hub.store.close()


async def test_site_masks_are_recorded_at_start_and_reload_for_data_only_exports(
    tmp_path: Path,
) -> None:
    """No picture is ever served: the record comes from the start and the
    reload alone (before, only a masked picture wrote it, and a --data export
    of a camera masked in the site file was cut unmasked)."""
    site, data = tmp_path / "site.yaml", tmp_path / "data"
    _write_site(site, _masked_camera("cam-a", "house"))
    hub = Hub.from_file(site, data_dir=data, web=False)
    await hub.start()
    try:
        _write_site(site, _masked_camera("cam-a", "house"), _masked_camera("cam-b", "porch"))
        assert (await hub.reload("test"))["ok"]
    finally:
        await hub.stop()
    assert await _offline_plan_masks(data, "cam-a") == ["house"]
    assert await _offline_plan_masks(data, "cam-b") == ["porch"]  # added by the reload


async def test_a_data_only_export_refuses_when_the_masks_were_never_recorded(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(MasksUnknown, match="give -c SITE"):
        await _offline_plan_masks(data, "cam-a")
