"""Alarms are states: raised once, reminded slowly, cleared with an event."""

from __future__ import annotations

from pathlib import Path

from retention_helpers import mount_tmpfs, unmount

from csuhub.alarms import AlarmBoard
from csuhub.bus import EventBus
from csuhub.events import AlarmCleared, AlarmRaised, Event, RetentionAlert
from csuhub.testing import build_hub


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _board(remind_every: float = 3600.0) -> tuple[AlarmBoard, list[Event], Clock]:
    bus = EventBus()
    seen: list[Event] = []
    bus.listen(AlarmRaised, seen.append)
    bus.listen(AlarmCleared, seen.append)
    clock = Clock()
    return AlarmBoard(bus, "recording", remind_every=remind_every, clock=clock), seen, clock


async def test_raised_once_reminded_slowly_cleared_once() -> None:
    board, seen, clock = await _board(remind_every=600)
    assert board.raise_alarm("disk_full", None, "no space") is True
    for _ in range(50):  # every ffmpeg retry says it again
        clock.now += 5
        assert board.raise_alarm("disk_full", None, "no space") is False
    clock.now += 400  # 650 s after the first: one reminder
    assert board.raise_alarm("disk_full", None, "still no space") is True
    assert board.raise_alarm("disk_full", None, "still no space") is False
    await board.bus.drain()
    assert [(type(e).__name__, getattr(e, "reminder", None)) for e in seen] == [
        ("AlarmRaised", False),
        ("AlarmRaised", True),
    ]
    assert seen[1].message == "still no space"  # type: ignore[attr-defined]
    assert board.clear("disk_full", None, "space again") is True
    assert board.clear("disk_full", None, "space again") is False
    await board.bus.drain()
    cleared = seen[-1]
    assert isinstance(cleared, AlarmCleared)
    assert (cleared.kind, cleared.source, cleared.message) == (
        "disk_full",
        "recording",
        "space again",
    )
    assert len(seen) == 3
    # after a clear, the same condition is a new alarm
    assert board.raise_alarm("disk_full", None, "no space") is True


async def test_alarms_are_per_kind_and_camera() -> None:
    board, seen, _ = await _board()
    assert board.raise_alarm("not_recording", "cam-a", "x")
    assert board.raise_alarm("not_recording", "cam-b", "x")
    assert not board.raise_alarm("not_recording", "cam-a", "x")
    assert board.clear_camera("cam-a") == 1
    assert [a.camera_id for a in board.active()] == ["cam-b"]
    await board.bus.drain()
    assert len(seen) == 3


async def test_rounds_clear_what_was_not_raised_again() -> None:
    """A sweep re-evaluates storage_pressure / below_minimum each time: one alarm while
    the condition lasts, cleared by the first sweep that does not see it."""
    board, seen, clock = await _board()
    for _ in range(10):  # ten sweeps under pressure, cam-a below its minimum in all
        board.begin_round()
        board.raise_alarm("storage_pressure", None, "free space 3 %")
        board.raise_alarm("below_minimum", "cam-a", "would go below 7 days")
        board.raise_alarm("expiring", "cam-z", "other kind, not in the round")
        board.end_round({"storage_pressure", "below_minimum"})
        clock.now += 60
    await board.bus.drain()
    assert [type(e).__name__ for e in seen] == ["AlarmRaised"] * 3
    board.begin_round()
    board.raise_alarm("below_minimum", "cam-a", "still")
    assert board.end_round({"storage_pressure", "below_minimum"}, "sweep found room") == 1
    await board.bus.drain()
    assert isinstance(seen[-1], AlarmCleared) and seen[-1].kind == "storage_pressure"
    assert board.is_active("below_minimum", "cam-a") and board.is_active("expiring", "cam-z")


async def test_storage_pressure_is_one_alarm_over_many_sweeps_then_cleared(
    tmp_path: Path,
) -> None:
    """storage_pressure and below_minimum fired on every sweep; now once, and cleared by
    the first sweep that finds room again."""
    storage = mount_tmpfs(tmp_path / "small", "4m")
    try:
        filler = storage / "filler"
        filler.write_bytes(b"\0" * (3 * 1024 * 1024))  # 75 % used
        cfg = {
            "hub": {"timezone": "UTC"},
            "recording": {"storage": str(storage)},
            "retention": {
                "interval": "1h",
                "policies": [
                    {
                        "policy": "storage_pressure",
                        "options": {"min_free_percent": 40, "critical_free_percent": 1},
                    }
                ],
            },
        }
        hub = build_hub(tmp_path / "data", cfg)
        alerts: list[RetentionAlert] = []
        cleared: list[AlarmCleared] = []
        hub.bus.listen(RetentionAlert, alerts.append)
        hub.bus.listen(AlarmCleared, cleared.append)
        await hub.start()
        try:
            for _ in range(4):
                await hub.retention.sweep()
            await hub.bus.drain()
            kinds = [a.kind for a in alerts]
            assert kinds.count("storage_pressure") == 1 and kinds.count("below_minimum") == 1
            assert hub.retention.last is not None
            assert {a["kind"] for a in hub.retention.last.alerts} >= {"storage_pressure"}
            filler.unlink()  # room again
            await hub.retention.sweep()
            await hub.bus.drain()
            assert sorted(c.kind for c in cleared) == ["below_minimum", "storage_pressure"]
            assert all(c.source == "retention" for c in cleared)
        finally:
            await hub.stop()
    finally:
        unmount(storage)


def test_csuhub_run_prints_the_end_of_an_alarm() -> None:
    """``csuhub run`` printed raised alarms but said nothing when they ended."""
    from csuhub.cli.run import describe as _describe
    from csuhub.events import AlarmCleared

    text = _describe(
        AlarmCleared(
            source="recording",
            kind="disk_full",
            camera_id=None,
            message="room to record again",
            since=0.0,
            duration=3725.0,
        )
    )
    assert text == "CLEARED recording disk_full after 1h02m: room to record again"
    cam = _describe(
        AlarmCleared(
            source="recording",
            kind="not_recording",
            camera_id="cam-a",
            message="recording again",
            since=0.0,
            duration=95.0,
        )
    )
    assert cam == "CLEARED recording not_recording cam-a after 1m35s: recording again"
