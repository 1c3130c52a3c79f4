"""Masking pictures before they leave the hub: snapshots, timeline frames, and
the command an export cuts with.

Fail closed: when masks apply and masking fails (ffmpeg missing, a picture
that cannot be read, a timeout), the caller gets ``MaskingFailed``, never the
unmasked picture. The mask image and the snapshot go to a private temporary
folder (mode 0700) removed after each use; ffmpeg runs through the hub's
process group, so it dies with the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub.masks.ffmpeg import export_args, frame_args, jpeg_args
from csuhub.masks.model import Mask, polygons_of
from csuhub.masks.raster import MAX_SIDE, mask_pgm
from csuhub.recording.concat import concat_args

if TYPE_CHECKING:
    from csuhub.masks.policy import MaskPlan
    from csuhub.supervisor import ProcessGroup

#: seconds one masked picture may take before its ffmpeg is killed
TIMEOUT = 20.0

#: JPEG start-of-frame markers (baseline, progressive, lossless...; not DHT/JPG/DAC)
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class MaskingFailed(Exception):
    """The picture could not be masked; it must not be shown unmasked."""


class MaskingTimeout(MaskingFailed):
    """ffmpeg took longer than allowed (and was killed)."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame header, walking its segments;
    a ``ValueError`` for anything that is not a well-formed JPEG header."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("a JPEG segment does not start with 0xFF")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break  # end of image or start of scan before any frame header
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ValueError("a JPEG segment has an impossible length")
        if marker in _SOF:
            if pos + 9 > len(data) or length < 7:
                raise ValueError("a truncated JPEG frame header")
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
                raise ValueError(f"a JPEG of {width}x{height} pixels")
            return width, height
        pos += 2 + length
    raise ValueError("no JPEG frame header")


async def mask_jpeg(
    processes: ProcessGroup, jpeg: bytes, masks: Sequence[Mask], *, timeout: float = TIMEOUT
) -> bytes:
    """``jpeg`` with ``masks`` painted in (as it is when there are none)."""
    if not masks:
        return jpeg
    try:
        width, height = jpeg_size(jpeg)
    except ValueError as err:
        raise MaskingFailed(f"the picture cannot be masked: {err}") from None
    with _private_dir() as folder:
        still = folder / "still.jpg"
        mask = await write_mask(folder, masks, width, height)
        await asyncio.to_thread(still.write_bytes, jpeg)
        args = jpeg_args(_ffmpeg(), still, mask, width, height)
        return await _run_for_jpeg(processes, args, timeout)


async def masked_frame(
    processes: ProcessGroup,
    segment: Path,
    offset: float,
    masks: Sequence[Mask],
    *,
    timeout: float = TIMEOUT,
) -> bytes:
    """One JPEG of ``segment`` at ``offset`` seconds, masked (plain without masks);
    the segment's picture size is read with ffprobe first."""
    if not masks:
        return await _run_for_jpeg(processes, frame_args(_ffmpeg(), segment, offset), timeout)
    width, height = await probe_size(processes, segment)
    with _private_dir() as folder:
        mask = await write_mask(folder, masks, width, height)
        args = frame_args(_ffmpeg(), segment, offset, mask, width, height)
        return await _run_for_jpeg(processes, args, timeout)


async def probe_size(processes: ProcessGroup, video: Path) -> tuple[int, int]:
    """The first video stream's (width, height)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise MaskingFailed("ffprobe is not installed: the picture cannot be masked")
    args = [
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height",
        "-of",
        "csv=p=0:s=x",
        str(video),
    ]
    out = await _run(processes, args, TIMEOUT)
    text = out.decode("ascii", errors="replace").strip().splitlines()[:1]
    try:
        width, height = (int(v) for v in text[0].split("x")[:2])
    except (IndexError, ValueError):
        raise MaskingFailed(f"cannot read the picture size of {video.name}") from None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise MaskingFailed(f"{video.name} has an impossible picture size")
    return width, height


async def write_mask(folder: Path, masks: Sequence[Mask], width: int, height: int) -> Path:
    """``mask.pgm`` in ``folder``, drawn off the event loop (cached per size)."""
    data = await asyncio.to_thread(mask_pgm, polygons_of(masks), width, height)
    path = folder / "mask.pgm"
    await asyncio.to_thread(path.write_bytes, data)
    return path


@contextlib.contextmanager
def _private_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="csuhub-mask-") as name:
        yield Path(name)


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise MaskingFailed("ffmpeg is not installed: the picture cannot be masked")
    return found


async def _run_for_jpeg(processes: ProcessGroup, args: list[str], timeout: float) -> bytes:
    image = await _run(processes, args, timeout)
    if not image.startswith(b"\xff\xd8"):
        raise MaskingFailed("no picture could be decoded")
    return image


async def _run(processes: ProcessGroup, args: list[str], timeout: float) -> bytes:
    proc = await processes.spawn(
        args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException as err:
        # a decode that hangs (or a client gone) must not leave ffmpeg running
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        if isinstance(err, TimeoutError):
            raise MaskingTimeout("no picture could be made in time") from None
        raise
    if proc.returncode != 0:
        raise MaskingFailed(f"ffmpeg could not mask the picture (exit {proc.returncode})")
    return out


async def export_cut_args(
    processes: ProcessGroup,
    plan: MaskPlan,
    ffmpeg: str,
    listing: Path,
    first_segment: Path,
    work: Path,
    output: str,
    *extra: str,
) -> tuple[list[str], dict[str, Any]]:
    """The export's ffmpeg command and what its manifest says about masking:
    stream copy when nothing is to be painted, else the re-encode through the
    mask, drawn at the first source segment's size into ``work`` (the export's
    own temporary folder)."""
    if not plan.apply:
        return concat_args(ffmpeg, listing, output, *extra), plan.manifest()
    width, height = await probe_size(processes, first_segment)
    mask = await write_mask(work, plan.apply, width, height)
    return export_args(ffmpeg, listing, mask, width, height, output, *extra), plan.manifest(
        width, height
    )
