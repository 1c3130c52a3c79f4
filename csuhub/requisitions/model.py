"""What a requisition is: the fields a registration must give, the statuses and
outcomes, the legal frames, and the errors the workflow raises."""

from __future__ import annotations

import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.timeutil import TimeError, check_epoch

LEGAL_FRAMES = {
    "flagrant_delit": "flagrant délit",
    "enquete_preliminaire": "enquête préliminaire",
    "information_judiciaire": "information judiciaire",
}
OUTCOMES = ("helped", "not_helped", "unknown")
STATUSES = ("requested", "held", "exported", "delivered", "closed")
#: the longest range one requisition may cover; a longer request is several
MAX_RANGE = 31 * 86400


class RequisitionError(Exception):
    """Bad input or a forbidden transition; the message is for the user."""


class RequisitionConflict(RequisitionError):
    """The request is valid but clashes with the register (a reference already used)."""


class UnknownCamera(RequisitionError):
    """A camera the register does not know, or one outside the caller's scope: the
    same error, so that a scoped caller cannot tell the two apart."""


def _epoch(value: float) -> float:
    """A time the register can print (1970..9999); 1e15 was stored, then failed every listing."""
    try:
        return check_epoch(value)
    except TimeError as err:
        raise vol.Invalid(str(err)) from None


CREATE_SCHEMA = vol.Schema(
    {
        vol.Required("reference"): vol.All(str, vol.Strip, vol.Length(min=1, max=100)),
        vol.Required("service"): vol.All(str, vol.Strip, vol.Length(min=1, max=200)),
        vol.Required("officer"): vol.All(str, vol.Strip, vol.Length(min=1, max=200)),
        vol.Required("legal_frame"): vol.In(
            sorted(LEGAL_FRAMES), msg=f"must be one of {', '.join(sorted(LEGAL_FRAMES))}"
        ),
        vol.Required("cameras"): vol.All(cv.ensure_list, [cv.slug], vol.Length(min=1)),
        vol.Required("start"): vol.All(vol.Coerce(float), _epoch),
        vol.Required("end"): vol.All(vol.Coerce(float), _epoch),
        vol.Required("reason"): vol.All(str, vol.Strip, vol.Length(min=1, max=2000)),
    },
    extra=vol.PREVENT_EXTRA,
)
