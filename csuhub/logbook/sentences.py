"""What a logbook line says: one sentence per audited action, in French (the
room's language) or English, built from the entry's parameters.

The audit stores what happened as an action name and parameters; a shift
reads sentences. The table below is the one place that turns one into the
other, so a new action of the logbook gets its sentence here (an action it
does not name reads as its name). Parameters are placed as text, shortened,
never as markup: the HTML page escapes the whole sentence.

Placeholders are ``{name}``, or ``{a|b}`` for the first of several parameter
names present. A missing parameter reads ``?``, except inside ``[...]``: an
optional part, left out whole when a parameter in it is missing. A priority
reads in words (*haute*, *high*), whether the desk wrote its number or its
name. A few values are derived: ``number`` (the incident's id, from the target), ``linked`` (the
cameras an ``incident.camera_link`` names, with their distances), ``changed``
(the fields an ``incident.update`` changed: their names only, never their
values, which may hold a caller's number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from csuhub.refs import Priority

LANGS = ("fr", "en")
MAX_VALUE = 500

#: action -> (French, English)
SENTENCES: dict[str, tuple[str, str]] = {
    "logbook.note": ("Note : {text}", "Note: {text}"),
    "logbook.correct": (
        "Correction de l'entrée n° {corrects} : {text}",
        "Correction of entry #{corrects}: {text}",
    ),
    "call.received": (
        "Appel reçu sur la ligne {line} ({state})[, incident {incident}]",
        "Call received on line {line} ({state})[, incident {incident}]",
    ),
    "call.updated": (
        "Appel sur la ligne {line} : {state}[, incident {incident}]",
        "Call on line {line}: {state}[, incident {incident}]",
    ),
    "incident.open": (
        "Incident {number} ouvert[ : {category}][, priorité {priority}][, {address|district}]",
        "Incident {number} opened[: {category}][, priority {priority}][, {address|district}]",
    ),
    "incident.update": (
        "Incident {number} mis à jour[ : {changed}]",
        "Incident {number} updated[: {changed}]",
    ),
    "incident.camera_link": (
        "Incident {number} : caméra(s) liée(s) {linked}",
        "Incident {number}: camera(s) linked {linked}",
    ),
    "incident.bookmark": (
        "Incident {number} : signet sur {camera|camera_id}[ : {note|text}]",
        "Incident {number}: bookmark on {camera|camera_id}[: {note|text}]",
    ),
    "incident.note": (
        "Incident {number} : note : {text|note}",
        "Incident {number}: note: {text|note}",
    ),
    "incident.close": (
        "Incident {number} clos[ : {outcome}]",
        "Incident {number} closed[: {outcome}]",
    ),
    "camera.offline": ("Caméra hors service : {why}", "Camera offline: {why}"),
    "camera.online": ("Caméra rétablie{down}", "Camera back online{down}"),
    "recording.export": (
        "Export des images de {target} : {reason}",
        "Footage of {target} exported: {reason}",
    ),
    "requisition.create": (
        "Réquisition enregistrée : {reason}",
        "Requisition registered: {reason}",
    ),
    "requisition.export": ("Extraction pour la réquisition", "Extraction for the requisition"),
    "requisition.deliver": (
        "Extraction remise à {recipient|to}",
        "Extraction handed over to {recipient|to}",
    ),
    "requisition.close": ("Réquisition close : {outcome}", "Requisition closed: {outcome}"),
    "requisition.release": (
        "Réquisition : conservation des images levée",
        "Requisition: hold on the footage released",
    ),
    "requisition.download": (
        "Fichier de réquisition téléchargé : {name|file}",
        "Requisition file downloaded: {name|file}",
    ),
    "mask.lift.request": (
        "Levée de masque demandée pour {duration} s : {reason}",
        "Privacy mask lift requested for {duration} s: {reason}",
    ),
    "mask.lift.approve": (
        "Levée de masque approuvée (demandée par {requested_by})",
        "Privacy mask lift approved (requested by {requested_by})",
    ),
    "mask.lift.refuse": (
        "Levée de masque refusée (demandée par {requested_by})",
        "Privacy mask lift refused (requested by {requested_by})",
    ),
    "mask.lift.end": ("Levée de masque terminée", "Privacy mask lift ended"),
    "mask.lift.expire": ("Levée de masque expirée", "Privacy mask lift expired"),
    "hub.start": ("Démarrage du hub (version {version})", "Hub started (version {version})"),
    "hub.stop": ("Arrêt du hub", "Hub stopped"),
}

#: an incident's priority in words (``csuhub.refs.Priority``'s names)
PRIORITIES: dict[str, tuple[str, str]] = {
    "low": ("basse", "low"),
    "normal": ("normale", "normal"),
    "high": ("haute", "high"),
    "critical": ("critique", "critical"),
}

#: how an entry ended, for people
OUTCOMES: dict[str, tuple[str, str]] = {
    "started": ("commencé", "started"),
    "ok": ("fait", "done"),
    "refused": ("refusé", "refused"),
    "failed": ("échoué", "failed"),
}

_FIELD = re.compile(r"\{([a-z_|]+)\}")
_TOKEN = re.compile(r"\[([^\[\]]*)\]|\{([a-z_|]+)\}")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list | tuple):
        value = ", ".join(_text(v) for v in value)
    text = " ".join(str(value).split()) if not isinstance(value, str) else value
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _duration(seconds: Any, lang: str) -> str:
    """``camera.online``'s downtime: `` après 3 min`` / `` after 3 min``."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    total = int(seconds)
    if total < 60:
        shown = f"{total} s"
    elif total < 3600:
        shown = f"{total // 60} min"
    else:
        shown = f"{total // 3600} h {total % 3600 // 60:02d}"
    return f" après {shown}" if lang == "fr" else f" after {shown}"


def _priority(value: Any, lang: str) -> Any:
    """A priority in words, from either form the desk may write: the number
    (``2``, ``2.0``, ``"2"``: ``Priority``'s value) or the name (``"normal"``);
    anything else as written (a line is never refused for its wording)."""
    name: str | None = None
    if isinstance(value, str):
        folded = value.strip().casefold()
        if folded in PRIORITIES:
            name = folded
        elif folded.isascii() and folded.isdigit() and len(folded) < 4:
            value = int(folded)
    if name is None and isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and int(value) in {int(p) for p in Priority}:
            name = str(Priority(int(value)))
    if name is None:
        return value
    return PRIORITIES[name][0 if lang == "fr" else 1]


def _linked(cameras: Any) -> str | None:
    if not isinstance(cameras, list) or not cameras:
        return None
    shown = []
    for cam in cameras[:10]:
        if isinstance(cam, dict):
            distance = cam.get("distance_m")
            far = f" ({distance:.0f} m)" if isinstance(distance, int | float) else ""
            shown.append(f"{cam.get('id', '?')}{far}")
        else:
            shown.append(str(cam))
    return ", ".join(shown) + (" …" if len(cameras) > 10 else "")


def _derived(action: str, params: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    target = str(extra.get("target") or "")
    found: dict[str, Any] = {}
    if target.startswith("incident:"):
        found["number"] = target.partition(":")[2]
    if action == "incident.camera_link":
        found["linked"] = _linked(params.get("cameras")) or params.get("camera")
    if action == "incident.update":
        found["changed"] = ", ".join(sorted(str(k) for k in params)) or None
    return found


def describe(
    action: str, params: Mapping[str, Any], lang: str = "fr", *, extra: Mapping[str, Any] = {}
) -> str:
    """The sentence for one entry. ``extra`` holds the entry's columns the
    sentences may name (``target``, ``reason``)."""
    pair = SENTENCES.get(action)
    if pair is None:
        return action
    template = pair[0] if lang == "fr" else pair[1]
    values: dict[str, Any] = {**extra, **params, **_derived(action, params, extra)}
    if action == "camera.online":
        values["down"] = _duration(params.get("down_s"), lang)
    if "priority" in params:
        values["priority"] = _priority(params["priority"], lang)

    def value(names: str) -> str | None:
        for name in names.split("|"):
            found = values.get(name)
            if found is not None and found != "" and found != []:
                return _text(found)
        return None

    def optional(match: re.Match[str]) -> str:
        inner = match.group(1)
        if any(value(m.group(1)) is None for m in _FIELD.finditer(inner)):
            return ""
        return _FIELD.sub(lambda m: value(m.group(1)) or "?", inner)

    def token(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return optional(match)
        return value(match.group(2)) or "?"

    # one pass over the template: a value is never read again as a placeholder
    said = _TOKEN.sub(token, template)
    flaps = params.get("flaps")
    if isinstance(flaps, int) and not isinstance(flaps, bool) and flaps > 0:
        said += (
            f" ({flaps} changement(s) d'état non consigné(s) avant)"
            if lang == "fr"
            else f" ({flaps} state change(s) before not logged)"
        )
    return said


def outcome_word(outcome: str, lang: str = "fr") -> str:
    pair = OUTCOMES.get(outcome)
    return outcome if pair is None else pair[0 if lang == "fr" else 1]
