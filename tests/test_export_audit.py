"""An evidence export is audited when it starts, and again when it ends or
fails (``ref`` to the start): a crash mid-export leaves the start on record."""

from __future__ import annotations

import json
from pathlib import Path

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
