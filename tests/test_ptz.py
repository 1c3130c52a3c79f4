"""PtzMoves' ordering guarantees, with a camera whose answers are held back.

Races need a camera that answers when the test says so; the ONVIF driver
against ipycam (tests/test_cameras_onvif.py) covers the real protocol.
"""

from __future__ import annotations

import asyncio

from csuhub.cameras.ptz import PtzMoves


class HeldCamera:
    """A PTZ driver whose ``ptz_move`` reaches the camera only when ``release`` is set;
    ``moving`` is what the camera does after the commands it has taken, in order."""

    ptz_deadman = 3.0

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.taken: list[str] = []

    @property
    def moving(self) -> bool:
        return bool(self.taken) and self.taken[-1] == "move"

    async def ptz_move(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        await self.release.wait()
        self.taken.append("move")

    async def ptz_stop(self) -> None:
        self.taken.append("stop")

    async def ptz_absolute(self, pan: float, tilt: float, zoom: float = 0.0) -> None:
        self.taken.append("absolute")


MOVE = {"pan": 0.5, "tilt": 0.0, "zoom": 0.0}


async def test_a_move_taken_after_a_stop_is_stopped_again() -> None:
    """Found in review: a stop given while the move was on its way cancelled the move's
    pending stop; the camera took the move after the stop and turned for ever."""
    moves, camera = PtzMoves(), HeldCamera()
    move = asyncio.create_task(moves.run("cam", camera, "move", MOVE))
    await asyncio.sleep(0.01)
    await moves.run("cam", camera, "stop", {})
    camera.release.set()
    await move
    await moves.wait("cam")
    assert camera.taken == ["stop", "move", "stop"] and not camera.moving


async def test_a_move_slower_than_its_duration_still_ends() -> None:
    """The stop is armed before the move is sent; if it fires first, the move comes after."""
    moves, camera = PtzMoves(), HeldCamera()
    move = asyncio.create_task(moves.run("cam", camera, "move", {**MOVE, "duration": 0.05}))
    await asyncio.sleep(0.2)  # the duration is over, the move not yet taken
    assert camera.taken == ["stop"]
    camera.release.set()
    await move
    await moves.wait("cam")
    assert camera.taken == ["stop", "move", "stop"] and not camera.moving


async def test_another_command_during_the_move_leaves_it_stopped() -> None:
    moves, camera = PtzMoves(), HeldCamera()
    move = asyncio.create_task(moves.run("cam", camera, "move", MOVE))
    await asyncio.sleep(0.01)
    await moves.run("cam", camera, "absolute", {"pan": 0.0, "tilt": 0.0, "zoom": 0.0})
    camera.release.set()
    await move
    await moves.wait("cam")
    assert camera.taken[-1] == "stop" and not camera.moving


async def test_a_move_replaced_by_a_move_keeps_the_new_one_s_end() -> None:
    """The re-stop is only for a move nobody ends: a joystick's next move keeps going."""
    moves, camera = PtzMoves(), HeldCamera()
    camera.release.set()
    await moves.run("cam", camera, "move", {**MOVE, "duration": 5.0})
    await moves.run("cam", camera, "move", {**MOVE, "duration": 0.05})
    assert camera.taken == ["move", "move"] and moves.moving() == ["cam"]
    await moves.wait("cam")
    assert camera.taken == ["move", "move", "stop"]
