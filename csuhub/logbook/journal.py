"""The logbook of a day, read from the audit chain; notes and corrections written to it.

The logbook has no table of its own: it is a view over ``audit_log``, whose
entries are hash-chained (``csuhub audit verify`` covers every line), plus the
operators' own ``logbook.note`` and ``logbook.correct`` entries in that same
chain. A line is never edited: a correction is a new entry whose ``corrects``
parameter is the seq (audit id) of the line it corrects, and the corrected line
is shown with its corrections, whenever they were written.

Which entries are lines is :func:`selected`: calls and incidents, camera
failures and returns, exports and requisitions, mask lifts, the hub's start and
stop, and the notes. Reads of the logbook are no lines (nor audited).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csuhub.logbook.day import clock, day_bounds
from csuhub.logbook.masking import mask_params
from csuhub.logbook.scope import RequisitionCameras, Scope, Visible
from csuhub.logbook.sentences import describe, outcome_word

if TYPE_CHECKING:
    from csuhub.security.permissions import Principal
    from csuhub.store.protocols import AuditTrail

NOTE = "logbook.note"
CORRECT = "logbook.correct"
CAMERA_OFFLINE = "camera.offline"
CAMERA_ONLINE = "camera.online"

#: exact actions that are logbook lines (issue 13's contract, section 5, for
#: calls and incidents; the existing names for the rest)
ACTIONS = frozenset(
    {
        NOTE,
        CORRECT,
        "call.received",
        "call.updated",
        "incident.open",
        "incident.update",
        "incident.camera_link",
        "incident.bookmark",
        "incident.note",
        "incident.close",
        CAMERA_OFFLINE,
        CAMERA_ONLINE,
        "recording.export",
        "mask.lift.request",
        "mask.lift.approve",
        "mask.lift.refuse",
        "mask.lift.end",
        "mask.lift.expire",
        "hub.start",
        "hub.stop",
        # every step of the requisition workflow (requisitions/workflow.py, web)
        "requisition.create",
        "requisition.export",
        "requisition.deliver",
        "requisition.close",
        "requisition.release",
        "requisition.download",
    }
)
MAX_NOTE = 4000
MAX_SEQ = 2**63 - 1
PAGE = 5000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class NoteError(ValueError):
    """A note or correction refused, with the message the 400 carries."""


def selected(action: str, outcome: str) -> bool:
    """Is an audit entry a logbook line? The logbook's own entries only when
    written (a refused note, audited by the web layer, is no line)."""
    if action in (NOTE, CORRECT):
        return outcome == "ok"
    return action in ACTIONS


def check_text(raw: Any) -> str:
    """A note's text: a string, 1 to ``MAX_NOTE`` characters once surrounding
    blanks are removed, line breaks and tabs allowed, no other control character."""
    if not isinstance(raw, str):
        raise NoteError("text: a string is required")
    text = raw.replace("\r\n", "\n").strip()
    if not text:
        raise NoteError("text: empty")
    if len(text) > MAX_NOTE:
        raise NoteError(f"text: at most {MAX_NOTE} characters")
    if _CONTROL.search(text) or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise NoteError("text: control characters are not allowed (line breaks and tabs are)")
    return text


def parse_note(body: Any) -> tuple[str, int | None]:
    """``{"text": ..., "corrects": seq?}`` -> (text, corrects)."""
    if not isinstance(body, Mapping):
        raise NoteError('the body is {"text": "...", "corrects": <seq, optional>}')
    unknown = sorted(str(k) for k in body if k not in ("text", "corrects"))
    if unknown:
        raise NoteError(f"unknown field {unknown[0][:40]!r} (allowed: text, corrects)")
    if "text" not in body:
        raise NoteError("text: required")
    text = check_text(body["text"])
    corrects = body.get("corrects")
    if corrects is None:
        return text, None
    if isinstance(corrects, bool) or not isinstance(corrects, int) or not 1 <= corrects <= MAX_SEQ:
        raise NoteError("corrects: the seq of a logbook entry (a positive whole number)")
    return text, corrects


@dataclass
class Logbook:
    """One day of the logbook, ready for JSON, CSV or the printed page."""

    hub: str
    day: dt.date
    timezone: str
    start: float
    end: float
    lang: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        last = self.lines[-1] if self.lines else None
        return {
            "hub": self.hub,
            "day": self.day.isoformat(),
            "timezone": self.timezone,
            "from": self.start,
            "to": self.end,
            "lang": self.lang,
            "lines": self.lines,
            "count": len(self.lines),
            "last": None if last is None else {"seq": last["seq"], "hash": last["hash"]},
        }


def _params(entry: Mapping[str, Any]) -> dict[str, Any]:
    try:
        found = json.loads(entry["details"] or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def line_of(
    entry: Mapping[str, Any],
    tz: str,
    lang: str,
    show_callers: bool,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit entry as a logbook line (its parameters masked unless
    ``show_callers``); ``params``: the entry's as the reader's scope left them."""
    params = _params(entry) if params is None else dict(params)
    if not show_callers:
        params = mask_params(params)
    extra = {"target": entry["target"], "reason": entry["reason"]}
    corrects = params.get("corrects") if entry["action"] == CORRECT else None
    return {
        "seq": entry["id"],
        "ts": entry["ts"],
        "time": clock(entry["ts"], tz).isoformat(timespec="seconds"),
        "who": entry["actor"],
        "role": entry["role"],
        "action": entry["action"],
        "what": describe(entry["action"], params, lang, extra=extra),
        "target": entry["target"],
        "outcome": entry["outcome"],
        "outcome_text": outcome_word(entry["outcome"], lang),
        "reason": entry["reason"],
        "ref": entry["ref"],
        "corrects": corrects if isinstance(corrects, int) else None,
        "corrections": [],
        "params": params,
        "hash": entry["hash"],
    }


async def _shown(
    entry: Mapping[str, Any], scope: Scope, cited: Mapping[int, bool], trail: AuditTrail
) -> dict[str, Any] | None:
    """The parameters of a line the reader may see, or None (not a line for them).
    A correction is shown only with the line it corrects (``cited``: the
    decisions already taken, by seq)."""
    params = await scope.params(entry["action"], entry["target"], _params(entry))
    if params is None or entry["action"] != CORRECT or scope.everything:
        return params
    seq = params.get("corrects")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    if seq not in cited:
        found = await entry_at(trail, seq)
        cited[seq] = found is not None and await _sees(found, scope, cited, trail)
    return params if cited[seq] else None


async def _sees(
    entry: Mapping[str, Any], scope: Scope, cited: dict[int, bool], trail: AuditTrail
) -> bool:
    if not selected(entry["action"], entry["outcome"]):
        return False
    return await _shown(entry, scope, cited, trail) is not None


async def _entries(trail: AuditTrail, start: float | None, end: float | None, **kw: Any) -> Any:
    """Every matching entry, a page at a time (a day of audit is not bounded)."""
    after: int | None = kw.pop("after", None)
    while True:
        page = await trail.entries(start, end, after=after, limit=PAGE, **kw)
        for entry in page:
            yield entry
        if len(page) < PAGE:
            return
        after = page[-1]["id"]


async def read_day(
    trail: AuditTrail,
    hub: str,
    day: dt.date,
    tz: str,
    *,
    lang: str = "fr",
    show_callers: bool = False,
    visible: Visible | None = None,
    requisition_cameras: RequisitionCameras | None = None,
) -> Logbook:
    """The day's lines in seq order, each with the corrections written since.
    ``visible`` is the reader's camera scope (None: every camera), with
    ``requisition_cameras`` to tell which requisitions it covers
    (:mod:`csuhub.logbook.scope`)."""
    start, end = day_bounds(day, tz)
    book = Logbook(hub, day, tz, start, end, lang)
    scope = Scope(visible, requisition_cameras)
    cited: dict[int, bool] = {}
    # one indexed query per action (audit_log_action: action, ts), not a scan of
    # the day: a day of 200,000 entries (playback, snapshots) holds a few
    # hundred lines, read in milliseconds rather than in seconds
    found: list[dict[str, Any]] = []
    for action in sorted(ACTIONS):
        found.extend([e async for e in _entries(trail, start, end, action=action)])
    found.sort(key=lambda e: int(e["id"]))
    for entry in found:
        if not selected(entry["action"], entry["outcome"]):
            continue
        params = await _shown(entry, scope, cited, trail)
        cited[int(entry["id"])] = params is not None
        if params is not None:
            book.lines.append(line_of(entry, tz, lang, show_callers, params))
    if book.lines:
        by_seq = {line["seq"]: line for line in book.lines}
        first = book.lines[0]["seq"]
        async for entry in _entries(trail, None, None, action=CORRECT, after=first):
            if entry["outcome"] != "ok":
                continue
            fix = line_of(entry, tz, lang, show_callers)
            target = by_seq.get(fix["corrects"])
            if target is not None:
                said = fix["params"].get("text")
                target["corrections"].append(
                    {k: fix[k] for k in ("seq", "time", "who", "what")}
                    | {"text": said if isinstance(said, str) else fix["what"]}
                )
    return book


async def entry_at(trail: AuditTrail, seq: int) -> dict[str, Any] | None:
    page = await trail.entries(None, None, after=seq - 1, limit=1)
    return page[0] if page and page[0]["id"] == seq else None


async def write_note(
    trail: AuditTrail,
    who: Principal,
    text: str,
    corrects: int | None = None,
    *,
    visible: Visible | None = None,
    requisition_cameras: RequisitionCameras | None = None,
) -> int:
    """Append a note (or a correction of the line ``corrects``) to the chain as
    ``who``; returns its seq. A correction must cite a logbook line the writer
    may see."""
    if corrects is None:
        return await trail.event(who, NOTE, None, text=text)
    cited = await entry_at(trail, corrects)
    if cited is None or not await _sees(cited, Scope(visible, requisition_cameras), {}, trail):
        raise NoteError(f"corrects: there is no logbook entry {corrects}")
    return await trail.event(who, CORRECT, f"logbook:{corrects}", text=text, corrects=corrects)
