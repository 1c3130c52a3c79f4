"""Caller numbers in what the logbook shows: masked unless the reader holds
``incident.caller.view``.

The audit keeps a caller's number as the call line gave it (the accountable
record, read by the auditor); the logbook is read by the whole room, so every
parameter that may hold a number is masked on its way out, at any depth, and
by key name rather than by guessing what looks like a number: a key the call
lines use for the caller is masked whatever its value looks like. How a
number is masked is the incidents API's rule, not a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csuhub.incidents.model import mask_caller

#: parameter names that hold a caller's number (``caller`` in any key counts too)
CALLER_KEYS = frozenset(
    {"caller", "caller_number", "caller_id", "number", "phone", "msisdn", "pai", "from_number"}
)


def is_caller_key(key: str) -> bool:
    folded = key.casefold()
    return folded in CALLER_KEYS or "caller" in folded or "phone" in folded


def mask_number(value: Any) -> str:
    """A number as the incidents API shows it (:func:`csuhub.incidents.model.mask_caller`,
    the one rule: a room reading the logbook beside the incident must not see
    more of a number in one than in the other); a value that is not text (a
    number in JSON) masked as its text."""
    return mask_caller(str(value)) or ""


def mask_params(params: Any) -> Any:
    """``params`` with every caller-number value masked (at any depth)."""
    if isinstance(params, Mapping):
        return {
            k: (_mask_value(v) if is_caller_key(str(k)) else mask_params(v))
            for k, v in params.items()
        }
    if isinstance(params, list):
        return [mask_params(v) for v in params]
    return params


def _mask_value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Mapping | list):
        return mask_all(value)
    return mask_number(value)


def mask_all(value: Any) -> Any:
    """Every scalar under a caller key masked (a caller given as an object)."""
    if isinstance(value, Mapping):
        return {k: mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_all(v) for v in value]
    return _mask_value(value)
