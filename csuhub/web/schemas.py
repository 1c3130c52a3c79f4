"""The JSON Schemas the route declarations share: errors, cameras, segments,
and the query parameters several routes take (times, the stated reason).

They are written once here so that a route's declaration, the OpenAPI document
and the schemathesis run (which checks every answer against them) read the
same definition. Schemas describe what a handler accepts exactly: a time is
what ``timeutil.parse_time`` reads, a reason what ``validation.check_reason``
keeps. Answers are described with ``additionalProperties`` left open, so that
adding a field is not a breaking change.
"""

from __future__ import annotations

from typing import Any

from csuhub.web.declare import Param
from csuhub.web.requests import JSON
from csuhub.web.validation import MAX_REASON

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "description": "Every error answer: a message for people (a few add a field, e.g. PTZ's)",
}

#: ISO 8601 (an offset-less time is in the hub's time zone) or epoch seconds (ASCII),
#: 1970 to 9999: csuhub.timeutil.parse_time
TIME_TEXT: Schema = {
    "type": "string",
    "description": "ISO 8601 (2026-11-25T14:00, ...Z, ...+01:00; without an offset, the "
    "hub's time zone) or epoch seconds in ASCII digits; 1970 to 9999 only",
    "examples": ["2026-11-25T14:00", "1764075600"],
}
TIME_VALUE: Schema = {
    "oneOf": [
        TIME_TEXT,
        {"type": "number", "minimum": 0, "exclusiveMaximum": 253402300800},
    ]
}
EPOCH: Schema = {"type": "number", "description": "epoch seconds (UTC)"}
NULLABLE_TEXT: Schema = {"type": ["string", "null"]}
NULLABLE_EPOCH: Schema = {"type": ["number", "null"]}
ANY_OBJECT: Schema = {"type": "object"}

REASON = Param(
    "reason",
    {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": r"\S"},
    required=True,
    description="Why the footage is consulted (required, stated in the audit): printable "
    f"text, 1 to {MAX_REASON} characters once surrounding blanks are removed",
)


def time_param(name: str, what: str) -> Param:
    return Param(name, TIME_TEXT, description=what)


CAMERA: Schema = {
    "type": "object",
    "required": ["id", "state"],
    "properties": {
        "id": {"type": "string"},
        "name": NULLABLE_TEXT,
        "driver": NULLABLE_TEXT,
        "state": {"type": "string"},
        "state_reason": NULLABLE_TEXT,
        "origin": {"type": "string"},
        "location": {"type": ["object", "null"]},
        "authorization": ANY_OBJECT,
        "recording_allowed": {"type": "boolean"},
        "recording_blocked_reason": NULLABLE_TEXT,
    },
}
CAMERA_LIST: Schema = {
    "type": "object",
    "required": ["cameras"],
    "properties": {"cameras": {"type": "array", "items": CAMERA}},
}
SEGMENT: Schema = {
    "type": "object",
    "required": ["id", "camera_id", "start", "end", "status"],
    "properties": {
        "id": {"type": "integer"},
        "camera_id": {"type": "string"},
        "start": EPOCH,
        "end": EPOCH,
        "duration": {"type": "number"},
        "size": {"type": ["integer", "null"]},
        "path": {"type": "string"},
        "sha256": NULLABLE_TEXT,
        "status": {"type": "string"},
    },
}
GAP: Schema = {
    "type": "object",
    "required": ["start", "end"],
    "properties": {"start": EPOCH, "end": EPOCH, "reason": NULLABLE_TEXT},
}
CONTINUITY: Schema = {
    "type": "object",
    "required": ["gaps", "percent"],
    "properties": {
        "gaps": {"type": "array", "items": GAP},
        "percent": {"type": ["number", "null"]},
        "measured_s": {"type": "number"},
        "in_progress_s": {"type": "number"},
        "future_s": {"type": "number"},
    },
}
TIMELINE: Schema = {
    "type": "object",
    "required": ["camera_id", "from", "to", "segments", "gaps", "percent"],
    "properties": {
        **CONTINUITY["properties"],
        "camera_id": {"type": "string"},
        "from": EPOCH,
        "to": EPOCH,
        "segments": {"type": "array", "items": SEGMENT},
    },
}
REQUISITION: Schema = {
    "type": "object",
    "required": ["id", "reference", "status"],
    "properties": {
        "id": {"type": "integer"},
        "reference": {"type": "string"},
        "status": {"type": "string"},
        "cameras": {"type": "array", "items": {"type": "string"}},
    },
}


def json_answer(description: str, schema: Schema | None = None) -> tuple[str, str, Schema]:
    return (description, JSON, schema if schema is not None else ANY_OBJECT)


def error(description: str) -> tuple[str, str, Schema]:
    return (description, JSON, ERROR)


def binary(description: str, media: str) -> tuple[str, str, None]:
    return (description, media, None)


# -- the camera routes' parameters and bodies (web/cameras.py, masks, recordings) --

CAMERA_ID = Param(
    "camera_id",
    {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
    where="path",
    description="a camera id (anything else is a 404)",
)
_PRESET = {"type": "string", "minLength": 1, "maxLength": 64}
_UNIT = {"type": "number", "minimum": -1, "maximum": 1}
#: csuhub.cameras.ptz.validate: one action, only its own fields
PTZ_BODY = {
    "oneOf": [
        {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"const": "move"},
                "pan": _UNIT,
                "tilt": _UNIT,
                "zoom": _UNIT,
                "duration": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
            },
        },
        {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"const": "relative"},
                "pan": _UNIT,
                "tilt": _UNIT,
                "zoom": _UNIT,
            },
        },
        {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"const": "absolute"},
                "pan": _UNIT,
                "tilt": _UNIT,
                "zoom": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {"action": {"enum": ["stop", "home", "status", "presets"]}},
        },
        {
            "type": "object",
            "required": ["action", "preset"],
            "additionalProperties": False,
            "properties": {"action": {"enum": ["preset", "remove_preset"]}, "preset": _PRESET},
        },
        {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {"action": {"const": "set_preset"}, "name": _PRESET, "preset": _PRESET},
        },
    ]
}
#: csuhub.cameras.adoption.ADOPT_SCHEMA
ADOPT_BODY = {
    "type": "object",
    "required": ["authorization", "location"],
    "additionalProperties": False,
    "properties": {
        "authorization": {
            "type": "object",
            "required": ["reference", "expires"],
            "additionalProperties": False,
            "properties": {
                "reference": {"type": "string", "minLength": 1, "maxLength": 100},
                "issued": {"type": "string", "format": "date"},
                "expires": {"type": "string", "format": "date"},
            },
        },
        "location": {
            "type": "object",
            "required": ["lat", "lon", "district"],
            "additionalProperties": False,
            "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "district": {"type": "string", "minLength": 1, "maxLength": 100},
                "address": {"type": "string", "maxLength": 300},
            },
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "driver": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        "options": {"type": "object"},
        "reason": {"type": "string", "maxLength": 500},
    },
}
SCAN_BODY = {
    "type": "object",
    "properties": {"timeout": {"type": "number", "minimum": 0.1, "maximum": 30, "default": 3}},
}
