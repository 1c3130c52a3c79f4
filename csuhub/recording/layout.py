"""The storage layout: ``<storage>/<camera>/YYYY/MM/DD/HH/YYYYmmddTHHMMSSZ[-N].mp4`` (UTC).

The file name is the segment's start on the index's (media) clock; the hour
folders keep any folder to at most a few hundred files and make "what is
older than X" a cheap question for the index, never a walk of the tree.

The recorder never writes there directly: ffmpeg writes numbered files into
the camera's staging folder (``<camera>/.incoming/<run>-NNNNNN.mp4``, names
no two runs share and ffmpeg never reuses), and each finished file is then
*placed*: linked under its final name with an exclusive create, so two
segments starting in the same second (a burst of short segments) get
``...Z-2.mp4``, ``...Z-3.mp4`` instead of one overwriting the other (ffmpeg's
``-strftime`` names are to the second and it opens them with O_TRUNC).
"""

from __future__ import annotations

import calendar
import errno
import logging
import os
import re
import secrets
import time
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

#: a placed segment; ``-N`` (N >= 2) only when an earlier one took the same second
SEGMENT_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-([2-9]|[1-9]\d{1,5}))?\.mp4$")
NAME_FORMAT = "%Y%m%dT%H%M%SZ"
HOUR_FORMAT = "%Y/%m/%d/%H"
#: ffmpeg's ``-strftime`` pattern of the old layout (names to the second, which
#: collide): the hub no longer uses it; kept for tools that still name files so
FFMPEG_PATTERN = f"{HOUR_FORMAT}/{NAME_FORMAT}.mp4"
#: the per-camera folder ffmpeg writes into; never a segment's final place
STAGING = ".incoming"
#: a file in the staging folder: ``<run id>-<ffmpeg's segment number>.mp4``
STAGED_NAME = re.compile(r"^(\d{13,16}-[0-9a-f]{8})-(\d{6,9})\.mp4$")
#: how many same-second names are tried before giving up (fail closed: not placed)
MAX_SUFFIX = 100_000


class OutsideRoot(ValueError):
    """An index path that would leave the storage root: never read, served or unlinked."""


def is_contained(relative: str) -> bool:
    """Whether an index path stays under the storage root on its face: relative,
    not empty, no ``..`` part. No file system access, so the sweeper can ask it of
    thousands of rows; :func:`resolve_segment` adds the check of what it points at."""
    return bool(relative) and not relative.startswith("/") and ".." not in relative.split("/")


def resolve_segment(root: Path, relative: str) -> Path:
    """The file an indexed segment path names, or ``OutsideRoot``.

    The one check every reader of segment files makes (playback, frames, export):
    the path as written, then where it really leads once symbolic links are
    followed, must both stay under ``root`` (itself resolved, as
    ``RecordingManager.storage_root()`` gives it). Fails closed: a path that
    cannot be shown to be inside is outside.
    """
    if not is_contained(relative):
        raise OutsideRoot(f"{relative!r} is outside the storage root")
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise OutsideRoot(f"{relative!r} leads outside the storage root")
    return path


def segment_start(name: str) -> float | None:
    """The UTC start encoded in a segment's file name, or None if it is not one."""
    match = SEGMENT_NAME.match(name)
    if not match:
        return None
    return float(calendar.timegm(time.strptime(match.group(1), NAME_FORMAT)))


def segment_order(name: str) -> tuple[float, int] | None:
    """(start, same-second rank) of a segment's file name: the order the recorder
    placed them (``...Z.mp4`` before ``...Z-2.mp4`` before ``...Z-10.mp4``, which
    names alone do not sort), or None if it is not one."""
    start = segment_start(name)
    if start is None:
        return None
    match = SEGMENT_NAME.match(name)
    assert match is not None
    return start, int(match.group(2) or 1)


def hour_dir(root: Path, camera_id: str, when: float) -> Path:
    return root / camera_id / time.strftime(HOUR_FORMAT, time.gmtime(when))


def hour_folder(camera_dir: str, when: float) -> str:
    """:func:`hour_dir` of a camera's folder, as a string (the per-segment path)."""
    return f"{camera_dir}/{time.strftime(HOUR_FORMAT, time.gmtime(when))}"


def staging_dir(camera_dir: Path) -> Path:
    return camera_dir / STAGING


def new_run_id(now: float | None = None) -> str:
    """Milliseconds since the epoch and 32 random bits: no two ffmpeg runs share
    a prefix, not even after the clock stepped back (ffmpeg would truncate a
    file a dead run left behind)."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"{millis:013d}-{secrets.token_hex(4)}"


def staged_key(name: str) -> tuple[str, int] | None:
    """(run id, segment number) of a staged file name, or None: the order ffmpeg wrote them."""
    match = STAGED_NAME.match(name)
    if not match:
        return None
    return match.group(1), int(match.group(2))


def place_file(staged: str, folder: str, start: float) -> str:
    """Move a finished staged file to ``folder`` under the name of ``start``.

    Blocking (a thread). The final name is created exclusively (``link``
    fails if it exists; ``rename`` would replace it): a name taken by another
    segment starting in the same second gets the next free ``-N``. Same
    filesystem, so the file never exists half-copied.

    The hour folder is made only when the link says it is missing: it exists
    for all but the first segment of each hour, so a ``mkdir`` failing with
    ``EEXIST`` and a ``stat`` per segment are saved (about 5 us of the
    placement's 55). Nothing is cached, so a folder the sweeper removed is
    simply made again. Paths are strings: this runs once per segment, in the
    hashing thread, and building ``Path`` objects cost more than the ``link``.
    """
    base = time.strftime(NAME_FORMAT, time.gmtime(start))
    made = False
    number = 1
    while number < MAX_SUFFIX:
        target = f"{folder}/{base}.mp4" if number == 1 else f"{folder}/{base}-{number}.mp4"
        try:
            os.link(staged, target)
        except FileExistsError:
            number += 1
            continue
        except FileNotFoundError:
            if made:  # the folder is there: the staged file is what is missing
                raise
            # no hour folder yet (or the staged file vanished: the retry says so)
            os.makedirs(folder, exist_ok=True)
            made = True
            continue
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # a filesystem without hard links: check, then rename (one recorder
            # per camera places files, so nothing races it for the name)
            if not made:
                os.makedirs(folder, exist_ok=True)
                made = True
            if os.path.exists(target):
                number += 1
                continue
            os.rename(staged, target)
            return target
        try:
            os.unlink(staged)
        except OSError as err:  # placed all the same; the leftover has two links
            _LOGGER.warning("%s placed as %s but not removed: %s", staged, target, err)
        return target
    raise FileExistsError(errno.EEXIST, f"no free name for {base} in {folder}")


def place(staged: Path, folder: Path, start: float) -> Path:
    """:func:`place_file` on ``Path`` objects."""
    return Path(place_file(os.fspath(staged), os.fspath(folder), start))


def already_placed(staged: Path) -> bool:
    """A staged file that also has a final name (a crash between :func:`place`'s
    link and unlink): its staging name is removed and True returned, so it is
    not placed (and indexed) twice; the hour-folder walk finds the final one.
    Blocking."""
    try:
        if staged.stat().st_nlink < 2:
            return False
        staged.unlink()
    except FileNotFoundError:
        return True
    return True
