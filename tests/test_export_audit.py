"""An evidence export is audited when it starts, and again when it ends or
fails (``ref`` to the start): a crash mid-export leaves the start on record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_masks_ffmpeg import export, footage  # noqa: F401 - the fixture, with real footage

from csuhub.hub import Hub
from csuhub.recording.export import ExportError


async def test_an_export_is_audited_at_its_start_and_its_end(
    footage: tuple[Hub, float, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    hub, t0, _ = footage
    await hub.start()
    try:
        await export(hub, tmp_path / "ok.zip", "cam-b", t0)
        with pytest.raises(ExportError):  # nothing recorded there: fails, audited as failed
            await export(hub, tmp_path / "none.zip", "cam-b", t0 - 7200)
        rows = await hub.store.audit_trail.entries(action="recording.export")
    finally:
        await hub.stop()
    started, ended, started_2, failed = rows
    assert (started["outcome"], started["ref"], started["reason"]) == ("started", None, "PV 1")
    assert json.loads(started["details"])["requested"] == [t0, t0 + 4]
    assert (ended["outcome"], ended["ref"]) == ("ok", started["id"])
    assert json.loads(ended["details"])["output_sha256"]
    assert (started_2["outcome"], failed["outcome"], failed["ref"]) == (
        "started",
        "failed",
        started_2["id"],
    )
    assert json.loads(failed["details"])["error"]  # why, in words


async def test_a_lift_ended_during_an_unmasked_export_discards_it(
    footage: tuple[Hub, float, Path],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_masks_ffmpeg import person

    import csuhub.recording.export as export_module
    from csuhub.masks import lifts

    hub, t0, _ = footage
    await hub.start()
    try:
        officer, boss = person("officer", "requisition_officer"), person("boss", "supervisor")
        req = await hub.requisitions.create(
            {
                "reference": "PV-10",
                "service": "PJ",
                "officer": "OPJ Roy",
                "legal_frame": "flagrant_delit",
                "cameras": ["cam-a"],
                "start": t0,
                "end": t0 + 4,
                "reason": "vol",
            },
            officer.name,
        )
        asked = await lifts.request_lift(
            hub.store, officer, "cam-a", {"reason": "faces", "requisition_id": req["id"]}
        )
        await lifts.decide(hub.store, boss, asked["id"], True)
        checked = export_module.lift_held

        async def ended_meanwhile(hub_: Any, plan: Any, **kw: Any) -> bool:
            await lifts.end_lift(hub_.store, boss, plan.lift["id"])  # as if during the cut
            return await checked(hub_, plan, **kw)

        monkeypatch.setattr(export_module, "lift_held", ended_meanwhile)
        out = tmp_path / "unmasked.zip"
        with pytest.raises(ExportError, match="ended during the export"):
            await export(hub, out, "cam-a", t0, requisition_id=req["id"])
        assert not out.exists()
        (failed,) = [
            e
            for e in await hub.store.audit_trail.entries(action="recording.export")
            if e["outcome"] == "failed"
        ]
        assert "ended during the export" in json.loads(failed["details"])["error"]
    finally:
        await hub.stop()
