"""What a logbook line says: one sentence per audited action, in French (the
room's language) or English, built from the entry's parameters.

The audit stores what happened as an action name and parameters; a shift
reads sentences. The table below is the one place that turns one into the
other, so a new action of the logbook gets its sentence here (an action it
does not name reads as its name). Parameters are placed as text, shortened,
never as markup: the HTML page escapes the whole sentence.

Placeholders are ``{name}``, or ``{a|b}`` for the first of several parameter
names present (the writers of ``incident.note`` and ``requisition.deliver``
may name their text either way). A missing parameter reads ``?``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
        "Appel reçu sur la ligne {line} ({state})",
        "Call received on line {line} ({state})",
    ),
    "call.updated": ("Appel sur la ligne {line} : {state}", "Call on line {line}: {state}"),
    "incident.open": (
        "Incident ouvert : {category}, priorité {priority}",
        "Incident opened: {category}, priority {priority}",
    ),
    "incident.update": ("Incident mis à jour", "Incident updated"),
    "incident.camera_link": (
        "Caméra {camera|camera_id} liée à l'incident",
        "Camera {camera|camera_id} linked to the incident",
    ),
    "incident.bookmark": (
        "Signet sur la caméra {camera|camera_id} : {note|text}",
        "Bookmark on camera {camera|camera_id}: {note|text}",
    ),
    "incident.note": ("Note d'incident : {text|note}", "Incident note: {text|note}"),
    "incident.close": ("Incident clos : {outcome}", "Incident closed: {outcome}"),
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

#: how an entry ended, for people
OUTCOMES: dict[str, tuple[str, str]] = {
    "started": ("commencé", "started"),
    "ok": ("fait", "done"),
    "refused": ("refusé", "refused"),
    "failed": ("échoué", "failed"),
}

_FIELD = re.compile(r"\{([a-z_|]+)\}")


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


def describe(
    action: str, params: Mapping[str, Any], lang: str = "fr", *, extra: Mapping[str, Any] = {}
) -> str:
    """The sentence for one entry. ``extra`` holds the entry's columns the
    sentences may name (``target``, ``reason``)."""
    pair = SENTENCES.get(action)
    if pair is None:
        return action
    template = pair[0] if lang == "fr" else pair[1]
    values: dict[str, Any] = {**extra, **params}
    if action == "camera.online":
        values["down"] = _duration(params.get("down_s"), lang)

    def fill(match: re.Match[str]) -> str:
        for name in match.group(1).split("|"):
            value = values.get(name)
            if value is not None and value != "":
                return _text(value)
        return "?"

    said = _FIELD.sub(fill, template)
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
