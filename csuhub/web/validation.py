"""Parsers for everything a client puts in a request: path ids, names and JSON.

These are pure functions (property-tested in ``tests/test_api_fuzz.py``): the
request helpers in ``csuhub.web.requests`` turn their ``InputError`` into a JSON
4xx. They exist because the obvious one-liners are wrong on hostile input:

* ``str.isdigit()`` accepts ``²`` and the Arabic-Indic one (U+0661), which
  ``int()`` then rejects or reads as 1; and SQLite stores at most a signed
  64-bit integer, so a larger id raises ``OverflowError`` deep in the store;
* ``json.loads`` recurses once per bracket (``RecursionError`` at ~1,000
  levels), accepts ``NaN`` and ``Infinity``, and reads ``1e400`` as infinity:
  non-finite numbers then pass every ``x > 0`` or ``if x:`` check downstream;
* a NUL byte in a file name makes ``os.stat`` raise ``ValueError``;
* ``json.loads`` turns ``"\\udcff"`` into a lone surrogate, a ``str`` that
  cannot be encoded: argon2, SQLite and the audit's hash then fail with a 500.
  :func:`loads` refuses one anywhere in the document (keys too). Query strings
  and paths cannot carry one (aiohttp refuses raw non-ASCII in the request
  line and yarl decodes bad percent-escapes to U+FFFD), and the text checks
  here refuse non-printable characters, surrogates among them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Largest body any route reads (bytes); beyond it the answer is 413.
MAX_BODY = 1024 * 1024
#: Deepest JSON nesting accepted (objects and arrays together).
MAX_DEPTH = 32
#: SQLite's INTEGER is a signed 64-bit integer.
MAX_ID = 2**63 - 1
#: Longest stated reason for consulting footage (characters, surrounding blanks removed).
MAX_REASON = 500

_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: re's [0-9] is not \d
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_BRACKETS = re.compile(r'[\[\]{}"\\]')


class InputError(ValueError):
    """A request's input is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_id(raw: str) -> int | None:
    """A database id from a URL: ASCII decimal digits, 1..2**63-1; ``None`` if not one.

    ``None`` (not an exception) because an id that cannot exist is simply not
    found: the caller answers 404, as for any unknown id.
    """
    if not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def is_slug(raw: str) -> bool:
    """Camera ids and the like: lowercase ASCII, digits, ``-`` and ``_``, at most 63.

    ``fullmatch``, not ``match`` with ``$``: ``$`` also matches before a final newline.
    """
    return _SLUG.fullmatch(raw) is not None


def check_reason(raw: str | None) -> str:
    """A stated reason (why footage is played): the audit keeps it, the ethics
    committee reads it. Surrounding blanks are removed; what is left must be
    1 to ``MAX_REASON`` printable characters (no control or format character
    that would hide text in an export or a terminal)."""
    text = (raw or "").strip()
    if not text:
        raise InputError("a reason is required (?reason=...): say why the footage is consulted")
    if len(text) > MAX_REASON:
        raise InputError(f"the reason has at most {MAX_REASON} characters")
    if not text.isprintable():
        raise InputError("the reason must be printable text (no control characters)")
    return text


def check_name(raw: str, *, max_length: int = 255) -> str:
    """A file or object name from a client, refused if it could name another place.

    NUL, ``/`` and ``\\`` (path separators on some system the file may reach),
    ``.`` and ``..``, control characters, and the empty name are refused.
    """
    if not raw or len(raw) > max_length:
        raise InputError(f"a name must have 1 to {max_length} characters")
    if raw in (".", ".."):
        raise InputError("a name cannot be '.' or '..'")
    for ch in raw:
        if ch in "/\\":
            raise InputError("a name cannot contain a path separator")
        if ch == "\x00" or not ch.isprintable():
            raise InputError("a name cannot contain NUL or control characters")
    return raw


def json_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, outside strings; linear, no recursion.

    Run before ``json.loads`` so that a 100,000-deep array is refused in one
    pass instead of blowing the interpreter's stack.
    """
    depth = deepest = 0
    in_string = False
    skip_at = -1  # inside a string, the character right after a backslash is escaped
    for match in _BRACKETS.finditer(text):
        ch, at = match.group(), match.start()
        if in_string:
            if at == skip_at:
                continue
            if ch == "\\":
                skip_at = at + 1
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise InputError(f"{name} is not a number this API accepts (only finite numbers are)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"{text[:40]} is out of range (only finite numbers are accepted)")
    return value


def _int64(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -MAX_ID - 1 <= (value := int(text)) <= MAX_ID:
        raise InputError(f"{text[:40]} is out of range (integers are 64-bit)")
    return value


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted JSON: UTF-8, bounded depth, finite numbers and 64-bit integers only.

    Raises ``InputError`` (status 400) for anything else, never another exception.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the body is not UTF-8") from None
    else:
        text = data
    if json_depth(text) > max_depth:
        raise InputError(f"the JSON is nested deeper than {max_depth} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_int64,
        )
    except InputError:
        raise
    except (ValueError, RecursionError) as err:  # JSONDecodeError, too many int digits
        raise InputError(f"the body is not valid JSON ({_short(err)})") from None
    _refuse_surrogates(value)
    return value


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (it cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refuse_surrogates(value: Any) -> None:
    """Walk a parsed document (depth already bounded) without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                raise InputError("the JSON holds a lone surrogate (\\ud800-\\udfff), not text")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 120 else text[:117] + "..."
