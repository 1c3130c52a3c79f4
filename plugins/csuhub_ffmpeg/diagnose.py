"""Why ffmpeg stopped, in words an operator understands.

ffmpeg's stderr is a stream of warnings, most of them noise; the recorder
keeps its tail and this module turns it, with the exit status, into a state
(``unauthorized``, ``timeout``, ``disk_full``...) and a reason. Kept apart from
the recorder so the patterns can be read and tested on their own.
"""

from __future__ import annotations

import re
import signal

#: ffmpeg warnings that say nothing about why it stopped
NOISE = re.compile(
    r"Non-monotonous DTS|Timestamps are unset in a packet|This may result in incorrect|"
    r"deprecated|Last message repeated"
)

#: stderr patterns -> (state, reason); first match wins
CLASSIFY = [
    (
        re.compile(r"401 Unauthorized"),
        "unauthorized",
        "unauthorized: the camera refused the credentials",
    ),
    (re.compile(r"403 Forbidden"), "unauthorized", "forbidden by the camera"),
    (re.compile(r"404 Not Found"), "not_found", "no such stream on the camera"),
    (re.compile(r"Connection refused"), "refused", "connection refused"),
    (re.compile(r"Connection timed out|timed out"), "timeout", "the camera stopped answering"),
    (re.compile(r"No space left on device"), "disk_full", "disk full"),
    (
        re.compile(r"No route to host|Network is unreachable"),
        "unreachable",
        "the camera is unreachable",
    ),
    (
        re.compile(r"Invalid data found|could not find codec parameters", re.I),
        "invalid",
        "the stream is not valid video",
    ),
]


def classify(lines: list[str], returncode: int | None) -> tuple[str, str]:
    """Why ffmpeg stopped: a signal first (its last words are then unrelated), then
    the last line that names a cause, then the exit code with the last real message."""
    if returncode is not None and returncode < 0:
        return "killed", f"ffmpeg killed (signal {-returncode}{_signal_name(-returncode)})"
    meaningful = [line for line in lines if not NOISE.search(line)]
    for line in reversed(meaningful):
        for pattern, state, reason in CLASSIFY:
            if pattern.search(line):
                return state, reason
    if returncode == 0:
        return "ended", "stream ended"
    last = meaningful[-1][:200] if meaningful else "no output"
    return "crashed", f"ffmpeg exited with code {returncode}: {last}"


def _signal_name(number: int) -> str:
    try:
        return f", {signal.Signals(number).name}"
    except ValueError:
        return ""
